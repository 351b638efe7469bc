/**
 * Glob-style pattern matching, as Redis's `stringmatchlen` does it for
 * `CONFIG GET`, in time linear in the pattern for a name of fixed length.
 *
 * @module
 */

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const BACKSLASH = 0x5c;
const CARET = 0x5e;
const DASH = 0x2d;

function fold(c: number, nocase: boolean): number {
  return nocase && c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
}

/**
 * Whether the single-character element of `pattern` at `p` (a literal, an
 * escaped character, `?` or a `[...]` class) matches `c`; sets `#next` to
 * the element after it. One instance serves one call of {@linkcode globMatch}.
 */
class Element {
  next = 0;

  matches(pattern: Uint8Array, p: number, c: number, nocase: boolean): boolean {
    const end = pattern.length;
    const first = pattern[p];
    if (first === QUESTION) {
      this.next = p + 1;
      return true;
    }
    if (first === BACKSLASH && p + 1 < end) {
      this.next = p + 2;
      return fold(pattern[p + 1], nocase) === fold(c, nocase);
    }
    if (first !== OPEN) {
      this.next = p + 1;
      return fold(first, nocase) === fold(c, nocase);
    }
    // A class: `[abc]`, `[^abc]`, `[a-z]`, `[\]]`; unterminated, it runs to the end.
    let i = p + 1;
    const negate = i < end && pattern[i] === CARET;
    if (negate) i++;
    let found = false;
    const folded = fold(c, nocase);
    while (i < end && pattern[i] !== CLOSE) {
      if (pattern[i] === BACKSLASH && i + 1 < end) {
        // As in Redis: an escaped character in a class matches in its own case only.
        if (pattern[i + 1] === c) found = true;
        i += 2;
      } else if (i + 2 < end && pattern[i + 1] === DASH) {
        // As in Redis: the ends are put in order first, then folded.
        let low = pattern[i];
        let high = pattern[i + 2];
        if (low > high) [low, high] = [high, low];
        if (folded >= fold(low, nocase) && folded <= fold(high, nocase)) found = true;
        i += 3;
      } else {
        if (fold(pattern[i], nocase) === folded) found = true;
        i++;
      }
    }
    this.next = i < end ? i + 1 : i;
    return found !== negate;
  }
}

/**
 * Whether `name` matches the glob `pattern` (`*`, `?`, `[...]` with `^` and
 * ranges, `\` escapes), ignoring ASCII case when `nocase`.
 *
 * A `*` only ever resumes at the last star seen, never at earlier ones, so
 * the work is at most the pattern's length times the name's: a pattern of
 * thousands of stars costs no more than one of as many letters. (A
 * backtracking matcher, or a regular expression built from the pattern, is
 * exponential in the number of stars: CVE-2022-36021 in Redis.)
 *
 * @example
 * ```ts
 * import { globMatch } from "./glob.ts";
 * import assert from "node:assert/strict";
 * const bytes = (s: string) => new TextEncoder().encode(s);
 * assert.equal(globMatch(bytes("data*"), bytes("databases"), true), true);
 * assert.equal(globMatch(bytes("*a?e"), bytes("save"), true), true);
 * assert.equal(globMatch(bytes("[^s]ave"), bytes("save"), true), false);
 * assert.equal(globMatch(bytes("*".repeat(40) + "x"), bytes("appendonly"), true), false);
 * ```
 */
export function globMatch(pattern: Uint8Array, name: Uint8Array, nocase: boolean): boolean {
  // As in Redis, nothing matches an empty name but an empty pattern.
  if (name.length === 0) return pattern.length === 0;
  const element = new Element();
  let p = 0;
  let n = 0;
  /** Where the pattern resumes after the last `*`, and the name position it resumes with. */
  let starP = -1;
  let starN = 0;
  while (n < name.length) {
    if (p < pattern.length && pattern[p] === STAR) {
      while (p < pattern.length && pattern[p] === STAR) p++;
      starP = p;
      starN = n;
    } else if (p < pattern.length && element.matches(pattern, p, name[n], nocase)) {
      p = element.next;
      n++;
    } else if (starP >= 0) {
      // Let the last star take one more character, and try again after it.
      p = starP;
      n = ++starN;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === STAR) p++;
  return p === pattern.length;
}
