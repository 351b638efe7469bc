/**
 * The error of a data file that cannot be loaded, shared by the loader and
 * the byte sources it reads from (`load.ts` re-exports it).
 *
 * @module
 */

/**
 * The data file is missing, unreadable, or holds a line that is not a
 * registration. `line` is 1-based, or 0 when the problem is the file itself.
 *
 * @example
 * ```ts
 * import { DataError } from "./data_error.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(new DataError("regs", 3, "bad").message, "regs:3: bad");
 * assert.deepEqual(new DataError("regs", 0, "is a directory").message, "regs: is a directory");
 * ```
 */
export class DataError extends Error {
  /** Always "DataError". */
  override name = "DataError";
  /** The data file, as given. */
  readonly path: string;
  /** The 1-based line at fault, or 0 for the whole file. */
  readonly line: number;
  /** What is wrong, without the location. */
  readonly reason: string;

  /**
   * Creates the error; its message is `path:line: reason` (or `path: reason`).
   * @param path the data file
   * @param line the 1-based line, or 0 for the whole file
   * @param reason what is wrong
   * @param options the underlying error as `cause`, e.g. the file system's
   */
  constructor(path: string, line: number, reason: string, options?: ErrorOptions) {
    super(line > 0 ? `${path}:${line}: ${reason}` : `${path}: ${reason}`, options);
    this.path = path;
    this.line = line;
    this.reason = reason;
  }
}

/**
 * A file system error in words, for a {@linkcode DataError}'s reason.
 *
 * @example
 * ```ts
 * import { describeFsError } from "./data_error.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(describeFsError(new Deno.errors.NotFound("x")), "no such file");
 * ```
 */
export function describeFsError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.NotCapable) return "not allowed by Deno's permissions";
  return error instanceof Error ? error.message : String(error);
}
