/**
 * Splitting an inline command (`GET key`, as typed into telnet or nc) into
 * arguments, with the quoting rules of Redis's `sdssplitargs`.
 *
 * @module
 */

/**
 * Whether byte `c` separates inline arguments: C's `isspace`, as Redis's
 * `sdssplitargs` uses it, and NUL.
 *
 * @example
 * ```ts
 * import { isSpace } from "./inline.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual([0x20, 0x09, 0x0d, 0x00, 0x41].map(isSpace), [true, true, true, true, false]);
 * ```
 */
export function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x00;
}

/**
 * Whether byte `c` ends an unquoted inline argument: a space, a tab, CR,
 * LF or NUL, as `sdssplitargs` has it. Narrower than {@linkcode isSpace},
 * which skips the blanks between arguments: a vertical tab or a form feed
 * is part of an argument.
 *
 * @example
 * ```ts
 * import { endsWord } from "./inline.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual([0x20, 0x09, 0x0b, 0x0c, 0x00].map(endsWord), [true, true, false, false, true]);
 * ```
 */
export function endsWord(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x00;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10;
}

/**
 * The arguments of the inline command `line[start, end)`, or `null` when
 * its quotes are unbalanced (Redis then closes the connection). Double
 * quotes allow `\n \r \t \b \a \" \\ \xHH`; single quotes only `\'`; a
 * closing quote must be followed by white space or the end.
 *
 * @example
 * ```ts
 * import { splitInline } from "./inline.ts";
 * import assert from "node:assert/strict";
 * const line = new TextEncoder().encode('GET "a\\x41b" \'c d\'');
 * const args = splitInline(line, 0, line.length)!.map((a) => new TextDecoder().decode(a));
 * assert.deepEqual(args, ["GET", "aAb", "c d"]);
 * assert.equal(splitInline(new TextEncoder().encode('GET "a'), 0, 6), null);
 * ```
 */
export function splitInline(line: Uint8Array, start: number, end: number): Uint8Array[] | null {
  const args: Uint8Array[] = [];
  let p = start;
  for (;;) {
    while (p < end && isSpace(line[p])) p++;
    if (p >= end) return args;
    const bytes: number[] = [];
    let inDouble = false;
    let inSingle = false;
    for (;;) {
      if (inDouble) {
        if (p >= end) return null;
        const c = line[p];
        if (
          c === 0x5c && p + 3 < end && line[p + 1] === 0x78 && isHex(line[p + 2]) &&
          isHex(line[p + 3])
        ) {
          bytes.push(hexValue(line[p + 2]) * 16 + hexValue(line[p + 3]));
          p += 3;
        } else if (c === 0x5c && p + 1 < end) {
          p++;
          const e = line[p];
          bytes.push(
            e === 0x6e
              ? 0x0a
              : e === 0x72
              ? 0x0d
              : e === 0x74
              ? 0x09
              : e === 0x62
              ? 0x08
              : e === 0x61
              ? 0x07
              : e,
          );
        } else if (c === 0x22) {
          if (p + 1 < end && !isSpace(line[p + 1])) return null;
          inDouble = false;
          p++;
          break;
        } else {
          bytes.push(c);
        }
      } else if (inSingle) {
        if (p >= end) return null;
        const c = line[p];
        if (c === 0x5c && p + 1 < end && line[p + 1] === 0x27) {
          p++;
          bytes.push(0x27);
        } else if (c === 0x27) {
          if (p + 1 < end && !isSpace(line[p + 1])) return null;
          inSingle = false;
          p++;
          break;
        } else {
          bytes.push(c);
        }
      } else {
        if (p >= end || endsWord(line[p])) break;
        const c = line[p];
        if (c === 0x22) inDouble = true;
        else if (c === 0x27) inSingle = true;
        else bytes.push(c);
      }
      p++;
    }
    args.push(new Uint8Array(bytes));
  }
}
