/**
 * Validation of one registration line: a JSON object with a string
 * `addressOfRecord`, checked on the bytes so that loading never builds a
 * string or an object per line.
 *
 * @module
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
const LF = 0x0a;
const CR = 0x0d;

const OBJECT = 1;
const ARRAY = 2;

const AOR_KEY = new TextEncoder().encode("addressOfRecord");

/** Bytes that end the fast path inside a string: controls, quote, backslash, non-ASCII. */
const STRING_SPECIAL = new Uint8Array(256).map((_, c) =>
  c < 0x20 || c >= 0x80 || c === QUOTE || c === BACKSLASH ? 1 : 0
);

/** What {@linkcode RecordScanner.scan} found out about a line it accepted. */
export interface ScannedRecord {
  /** Offset just past the closing brace of the object. */
  contentEnd: number;
  /** Offset of the `\n` that ends the line, or the scan limit. */
  lineEnd: number;
  /** Offset of the first byte of the `addressOfRecord` value, after its quote. */
  aorStart: number;
  /** Offset just past the last byte of the value, before its closing quote. */
  aorEnd: number;
  /** The value has backslash escapes, so its bytes are not the AOR itself. */
  aorEscaped: boolean;
  /** No white space outside strings: the line is already compact JSON. */
  compact: boolean;
}

/**
 * A reusable validator for JSON Lines records. One instance scans many lines;
 * its fields describe the last line scanned, so the loader allocates nothing
 * per line.
 *
 * It accepts exactly what `JSON.parse` accepts (RFC 8259) and additionally
 * rejects invalid UTF-8, which a decoder would silently replace.
 *
 * @example
 * ```ts
 * import { RecordScanner } from "./record.ts";
 * import assert from "node:assert/strict";
 * const line = new TextEncoder().encode('{"addressOfRecord":"a1"}');
 * const scanner = new RecordScanner();
 * assert.ok(scanner.scan(line, 0, line.length), scanner.error);
 * assert.deepEqual([scanner.aorStart, scanner.aorEnd], [20, 22]);
 * ```
 */
export class RecordScanner implements ScannedRecord {
  contentEnd: number = -1;
  lineEnd: number = -1;
  aorStart: number = -1;
  aorEnd: number = -1;
  aorEscaped: boolean = false;
  compact: boolean = true;
  /** Why the last line was rejected; empty after a line was accepted. */
  error = "";
  #stack = new Uint8Array(64);
  #buf: Uint8Array = new Uint8Array(0);
  #lineStart = 0;
  #end = 0;
  #stringEscaped = false;
  /** What the last top-level `addressOfRecord` held, when not a string. */
  #aorKind = "";
  /** What the line holds: "an object" when all is well. */
  #topKind = "";
  /** The key just parsed is the top-level `addressOfRecord`. */
  #lastKeyIsAor = false;

  /**
   * Scans the line that starts at `start` and ends at the first `\n` before
   * `end` (or at `end`). Returns true when it is a JSON object with a string
   * `addressOfRecord`. Finding the line's end while validating it saves a
   * separate search for the `\n`.
   */
  scan(buf: Uint8Array, start: number, end: number): boolean {
    this.#buf = buf;
    this.#lineStart = start;
    this.#end = end;
    this.contentEnd = -1;
    this.lineEnd = -1;
    this.aorStart = -1;
    this.aorEnd = -1;
    this.aorEscaped = false;
    this.compact = true;
    this.error = "";
    this.#aorKind = "";

    let i = this.#ws(start);
    if (i >= end || buf[i] === LF) return this.#fail("empty line");
    // Any JSON value is scanned, so that "not JSON" and "not an object" differ.
    this.#topKind = describeValueStart(buf[i]);

    let depth = 0;
    let stack = this.#stack;
    // Set between a top-level "addressOfRecord" key and its value.
    let aorNext = false;
    value: for (;;) {
      i = this.#ws(i);
      const c = buf[i];
      if (i >= end || c === LF) return this.#unexpected(i);
      if (c === QUOTE) {
        const s = i + 1;
        i = this.#string(i);
        if (i < 0) return false;
        if (aorNext) {
          this.aorStart = s;
          this.aorEnd = i - 1;
          this.aorEscaped = this.#stringEscaped;
          this.#aorKind = "";
        }
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (aorNext) this.#aorKind = c === OPEN_BRACE ? "an object" : "an array";
        if (depth === stack.length) {
          const bigger = new Uint8Array(stack.length * 2);
          bigger.set(stack);
          stack = this.#stack = bigger;
        }
        stack[depth++] = c === OPEN_BRACE ? OBJECT : ARRAY;
        i = this.#ws(i + 1);
        const close = c === OPEN_BRACE ? CLOSE_BRACE : CLOSE_BRACKET;
        if (i < end && buf[i] === close) {
          depth--;
          i++;
        } else if (c === OPEN_BRACE) {
          i = this.#key(i, depth === 1);
          if (i < 0) return false;
          aorNext = this.#lastKeyIsAor;
          continue value;
        } else {
          aorNext = false;
          continue value;
        }
      } else {
        if (aorNext) this.#aorKind = describeValueStart(c);
        i = this.#scalar(i);
        if (i < 0) return false;
      }
      aorNext = false;

      // After a value: close containers or move on to the next member.
      for (;;) {
        if (depth === 0) return this.#finish(i);
        i = this.#ws(i);
        if (i >= end) return this.#unexpected(i);
        const d = buf[i];
        const container = stack[depth - 1];
        if (d === COMMA) {
          i = this.#ws(i + 1);
          if (container === OBJECT) {
            i = this.#key(i, depth === 1);
            if (i < 0) return false;
            aorNext = this.#lastKeyIsAor;
          }
          continue value;
        }
        if (d === (container === OBJECT ? CLOSE_BRACE : CLOSE_BRACKET)) {
          depth--;
          i++;
          continue;
        }
        return this.#unexpected(i);
      }
    }
  }

  /** Parses `"key" :` at i; returns the offset after the colon. */
  #key(i: number, topLevel: boolean): number {
    const buf = this.#buf;
    if (i >= this.#end || buf[i] !== QUOTE) {
      this.#unexpected(i);
      return -1;
    }
    const s = i + 1;
    i = this.#string(i);
    if (i < 0) return -1;
    this.#lastKeyIsAor = topLevel && this.#isAorKey(s, i - 1);
    i = this.#ws(i);
    if (i >= this.#end || buf[i] !== COLON) {
      this.#unexpected(i);
      return -1;
    }
    return i + 1;
  }

  #isAorKey(s: number, e: number): boolean {
    const buf = this.#buf;
    if (this.#stringEscaped) {
      // Rare: an escaped key such as "\u0061ddressOfRecord" is the same key.
      const text = new TextDecoder().decode(buf.subarray(s - 1, e + 1));
      return JSON.parse(text) === "addressOfRecord";
    }
    if (e - s !== AOR_KEY.length) return false;
    for (let k = 0; k < AOR_KEY.length; k++) {
      if (buf[s + k] !== AOR_KEY[k]) return false;
    }
    return true;
  }

  #ws(i: number): number {
    const buf = this.#buf;
    const end = this.#end;
    while (i < end) {
      const c = buf[i];
      // LF is not white space here: it ends the line.
      if (c !== 0x20 && c !== 0x09 && c !== CR) break;
      this.compact = false;
      i++;
    }
    return i;
  }

  /** Scans a string starting at its opening quote; returns the offset after it. */
  #string(i: number): number {
    const buf = this.#buf;
    const end = this.#end;
    this.#stringEscaped = false;
    i++;
    while (i < end) {
      const c = buf[i];
      if (STRING_SPECIAL[c] === 0) {
        i++;
        continue;
      }
      if (c === QUOTE) return i + 1;
      if (c === BACKSLASH) {
        this.#stringEscaped = true;
        if (i + 1 >= end) break;
        const e = buf[i + 1];
        if (e === 0x75) { // u: four hex digits
          if (i + 6 > end) break;
          for (let k = 2; k < 6; k++) {
            if (!isHex(buf[i + k])) {
              this.#fail(`invalid JSON: bad \\u escape at column ${this.#col(i)}`);
              return -1;
            }
          }
          i += 6;
        } else if (
          e === QUOTE || e === BACKSLASH || e === 0x2f || e === 0x62 ||
          e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74
        ) {
          i += 2;
        } else {
          this.#fail(`invalid JSON: bad escape at column ${this.#col(i)}`);
          return -1;
        }
        continue;
      }
      if (c === LF) break;
      if (c < 0x20) {
        this.#fail(
          `invalid JSON: control character ${hexByte(c)} in a string at column ${this.#col(i)}`,
        );
        return -1;
      }
      const n = utf8Length(buf, i, end);
      if (n === 0) {
        this.#fail(`invalid UTF-8 at column ${this.#col(i)}`);
        return -1;
      }
      i += n;
    }
    this.#fail("invalid JSON: unterminated string");
    return -1;
  }

  /** Scans a number, true, false or null; returns the offset after it. */
  #scalar(i: number): number {
    const buf = this.#buf;
    const end = this.#end;
    const c = buf[i];
    if (c === 0x74) return this.#literal(i, "true");
    if (c === 0x66) return this.#literal(i, "false");
    if (c === 0x6e) return this.#literal(i, "null");
    if (c === 0x2d) i++;
    if (i < end && buf[i] === 0x30) {
      i++;
    } else if (i < end && buf[i] >= 0x31 && buf[i] <= 0x39) {
      while (i < end && isDigit(buf[i])) i++;
    } else {
      this.#unexpected(i);
      return -1;
    }
    if (i < end && buf[i] === 0x2e) {
      i++;
      if (i >= end || !isDigit(buf[i])) {
        this.#unexpected(i);
        return -1;
      }
      while (i < end && isDigit(buf[i])) i++;
    }
    if (i < end && (buf[i] === 0x65 || buf[i] === 0x45)) {
      i++;
      if (i < end && (buf[i] === 0x2b || buf[i] === 0x2d)) i++;
      if (i >= end || !isDigit(buf[i])) {
        this.#unexpected(i);
        return -1;
      }
      while (i < end && isDigit(buf[i])) i++;
    }
    return i;
  }

  #literal(i: number, word: string): number {
    const buf = this.#buf;
    for (let k = 0; k < word.length; k++) {
      if (i + k >= this.#end || buf[i + k] !== word.charCodeAt(k)) {
        this.#unexpected(i + k);
        return -1;
      }
    }
    return i + word.length;
  }

  /** Checks what follows the object (at `i`) and the AOR found in it. */
  #finish(i: number): boolean {
    const buf = this.#buf;
    const end = this.#end;
    this.contentEnd = i;
    let j = i;
    while (j < end && (buf[j] === 0x20 || buf[j] === 0x09 || buf[j] === CR)) j++;
    if (j < end && buf[j] !== LF) return this.#unexpected(j);
    this.lineEnd = j;
    // A CR just before the line's end belongs to a CRLF, not to the JSON.
    if (j - i > 1 || (j - i === 1 && buf[i] !== CR)) this.compact = false;
    if (this.#topKind !== "an object") {
      return this.#fail(`not a JSON object: found ${this.#topKind}`);
    }
    if (this.#aorKind !== "") {
      return this.#fail(`"addressOfRecord" must be a string, found ${this.#aorKind}`);
    }
    if (this.aorStart < 0) return this.#fail(`missing "addressOfRecord"`);
    if (this.aorEnd === this.aorStart) return this.#fail(`"addressOfRecord" is empty`);
    return true;
  }

  #col(i: number): number {
    return i - this.#lineStart + 1;
  }

  #unexpected(i: number): boolean {
    if (i >= this.#end || this.#buf[i] === LF) {
      return this.#fail("invalid JSON: unexpected end of line");
    }
    const c = this.#buf[i];
    const shown = c >= 0x21 && c < 0x7f ? `'${String.fromCharCode(c)}'` : hexByte(c);
    return this.#fail(`invalid JSON: unexpected ${shown} at column ${this.#col(i)}`);
  }

  #fail(message: string): boolean {
    this.error = message;
    return false;
  }
}

function describeValueStart(c: number): string {
  if (c === OPEN_BRACKET) return "an array";
  if (c === OPEN_BRACE) return "an object";
  if (c === QUOTE) return "a string";
  if (c === 0x74 || c === 0x66) return "a boolean";
  if (c === 0x6e) return "null";
  if (c === 0x2d || isDigit(c)) return "a number";
  return "";
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) ||
    (c >= 0x61 && c <= 0x66);
}

function hexByte(c: number): string {
  return `0x${c.toString(16).padStart(2, "0").toUpperCase()}`;
}

function isCont(c: number): boolean {
  return (c & 0xc0) === 0x80;
}

/**
 * Length of the well-formed UTF-8 sequence at `buf[i]` (a byte ≥ 0x80),
 * or 0 when it is malformed: overlong, a surrogate, above U+10FFFF or cut.
 */
function utf8Length(buf: Uint8Array, i: number, end: number): number {
  const c = buf[i];
  if (c >= 0xc2 && c <= 0xdf) {
    return i + 1 < end && isCont(buf[i + 1]) ? 2 : 0;
  }
  if (c >= 0xe0 && c <= 0xef) {
    if (i + 2 >= end) return 0;
    const c1 = buf[i + 1];
    const lo = c === 0xe0 ? 0xa0 : 0x80;
    const hi = c === 0xed ? 0x9f : 0xbf;
    return c1 >= lo && c1 <= hi && isCont(buf[i + 2]) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (i + 3 >= end) return 0;
    const c1 = buf[i + 1];
    const lo = c === 0xf0 ? 0x90 : 0x80;
    const hi = c === 0xf4 ? 0x8f : 0xbf;
    return c1 >= lo && c1 <= hi && isCont(buf[i + 2]) && isCont(buf[i + 3]) ? 4 : 0;
  }
  return 0;
}

/**
 * Copies `buf[start, end)` to `buf[start, …)` without the white space outside
 * strings, in place; returns the new end. The line must have been accepted by
 * {@linkcode RecordScanner.scan}.
 */
export function compactInPlace(buf: Uint8Array, start: number, end: number): number {
  let w = start;
  let inString = false;
  for (let r = start; r < end; r++) {
    const c = buf[r];
    if (inString) {
      buf[w++] = c;
      if (c === BACKSLASH) buf[w++] = buf[++r];
      else if (c === QUOTE) inString = false;
    } else if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) {
      buf[w++] = c;
      if (c === QUOTE) inString = true;
    }
  }
  return w;
}

/**
 * Why the AOR `buf[start, end)` could never be asked for (empty, white
 * space at an end, a line break inside: no request line can carry it), or
 * "" when it can.
 *
 * @example
 * ```ts
 * import { aorProblem } from "./record.ts";
 * import assert from "node:assert/strict";
 * const bytes = new TextEncoder().encode(" a1");
 * assert.equal(aorProblem(bytes, 1, 3), "");
 * assert.match(aorProblem(bytes, 0, 3), /white space/);
 * ```
 */
export function aorProblem(buf: Uint8Array, start: number, end: number): string {
  if (start === end) return `"addressOfRecord" is empty`;
  const first = buf[start];
  const last = buf[end - 1];
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) {
    return `"addressOfRecord" starts or ends with white space, which requests cannot carry`;
  }
  for (let i = start; i < end; i++) {
    if (buf[i] === LF || buf[i] === CR) {
      return `"addressOfRecord" contains a line break, which requests cannot carry`;
    }
  }
  return "";
}

/**
 * The bytes of a JSON string value written with escapes, `buf[start, end)`
 * being what is between its quotes (already validated).
 *
 * @example
 * ```ts
 * import { unescapedString } from "./record.ts";
 * import assert from "node:assert/strict";
 * const bytes = new TextEncoder().encode('"a\\u0031"');
 * assert.equal(new TextDecoder().decode(unescapedString(bytes, 1, bytes.length - 1)), "a1");
 * ```
 */
export function unescapedString(buf: Uint8Array, start: number, end: number): Uint8Array {
  const text = new TextDecoder().decode(buf.subarray(start - 1, end + 1));
  return new TextEncoder().encode(JSON.parse(text) as string);
}
