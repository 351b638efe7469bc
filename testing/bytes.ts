/**
 * Bytes in tests: joining them, and showing them one char a byte.
 *
 * @module
 */

/**
 * `parts` joined into one array.
 *
 * @example
 * ```ts
 * import { concat } from "./bytes.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(concat([new Uint8Array([1]), new Uint8Array([2, 3])]), new Uint8Array([1, 2, 3]));
 * ```
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/**
 * `bytes` as a string of one char per byte: byte-exact comparisons that
 * print readably, whatever the bytes.
 *
 * @example
 * ```ts
 * import { latin1 } from "./bytes.ts";
 * import assert from "node:assert/strict";
 * assert.equal(latin1(new Uint8Array([0x61, 0xff])), "a\xff");
 * ```
 */
export function latin1(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return text;
}
