/**
 * Integers as Redis reads them from clients (`string2ll` in `util.c`).
 *
 * @module
 */

/** 2^63 − 1 and −2^63, the ends of a C `long long`. */
const LLONG_MAX = 9223372036854775807n;
const LLONG_MIN = -9223372036854775808n;
/** Digits below which a JavaScript number holds any value exactly. */
const EXACT_DIGITS = 15;

/**
 * The integer written in `buf[start, end)` by Redis's rules: an optional
 * `-`, no other sign, no leading zero (but `0` itself), no `-0`, within a
 * C `long long`; NaN when it is not one. Values beyond 2^53 come back
 * rounded, which keeps their sign and size: enough for every check made on
 * them (a count at most zero, a length over a limit, a version not 2 or 3).
 *
 * @example
 * ```ts
 * import { parseInteger } from "./integers.ts";
 * import assert from "node:assert/strict";
 * const parse = (s: string) => parseInteger(new TextEncoder().encode(s), 0, s.length);
 * assert.deepEqual(["42", "-1", "0", "007", "-0", "+1", ""].map(parse), [42, -1, 0, NaN, NaN, NaN, NaN]);
 * assert.ok(parse("-9223372036854775808") < 0);
 * assert.deepEqual(parse("9223372036854775808"), NaN);
 * ```
 */
export function parseInteger(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  const negative = buf[i] === 0x2d;
  if (negative) i++;
  // At most 19 digits and a sign (Redis refuses 21 characters or more).
  if (i === end || end - start > 20) return NaN;
  if (buf[i] === 0x30) return end - i === 1 && !negative ? 0 : NaN;
  let n = 0;
  for (let j = i; j < end; j++) {
    const digit = buf[j] - 0x30;
    if (digit < 0 || digit > 9) return NaN;
    n = n * 10 + digit;
  }
  if (end - i <= EXACT_DIGITS) return negative ? -n : n;
  // Long: check the exact value against the C type's range.
  let exact = 0n;
  for (let j = i; j < end; j++) exact = exact * 10n + BigInt(buf[j] - 0x30);
  if (negative ? -exact < LLONG_MIN : exact > LLONG_MAX) return NaN;
  return negative ? -n : n;
}
