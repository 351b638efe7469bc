/**
 * Rendering errors for log lines and messages.
 *
 * @module
 */

/**
 * An error as one line, `Name: message`, for logs; anything else as a string.
 *
 * @example
 * ```ts
 * import { describe } from "./errors.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(describe(new RangeError("too big")), "RangeError: too big");
 * assert.deepEqual(describe("plain"), "plain");
 * ```
 */
export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
