/**
 * Framing of request lines in a byte buffer, in place: no copies, no strings.
 *
 * @module
 */

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;

/** {@linkcode LineFramer.next} found no complete line yet. */
export const NO_LINE: number = -1;
/** {@linkcode LineFramer.next} found a line longer than the limit. */
export const LINE_TOO_LONG: number = -2;

/**
 * Finds request lines: each ends with LF or CRLF, and spaces and tabs around
 * its content are ignored. After a successful {@linkcode next}, `start` and
 * `end` delimit the trimmed content. One framer serves any number of
 * connections, one call at a time.
 *
 * @example
 * ```ts
 * import { LineFramer, NO_LINE } from "./line_framer.ts";
 * import assert from "node:assert/strict";
 * const buf = new TextEncoder().encode(" abc \r\nde");
 * const framer = new LineFramer(1024);
 * assert.equal(framer.next(buf, 0, buf.length), 7); // after the LF
 * assert.deepEqual([framer.start, framer.end], [1, 4]); // "abc"
 * assert.equal(framer.next(buf, 7, buf.length), NO_LINE); // "de" is incomplete
 * ```
 */
export class LineFramer {
  /** Start of the trimmed content of the last line found. */
  start = 0;
  /** End of the trimmed content of the last line found. */
  end = 0;
  /** Longest line accepted, in bytes before its terminator. */
  readonly maxLine: number;

  /**
   * Creates a framer.
   * @param maxLine longest line accepted, in bytes before its LF or CRLF
   */
  constructor(maxLine: number) {
    this.maxLine = maxLine;
  }

  /**
   * Looks for the next complete line in `buf[pos, limit)`. Returns the offset
   * after its LF; {@linkcode NO_LINE} when no LF is there yet; or
   * {@linkcode LINE_TOO_LONG} when the line (complete or not) already exceeds
   * {@linkcode maxLine}.
   */
  next(buf: Uint8Array, pos: number, limit: number): number {
    // A plain loop beats indexOf() on lines this short, and never looks
    // past `limit`.
    let lf = pos;
    while (lf < limit && buf[lf] !== LF) lf++;
    if (lf === limit) {
      // One more byte than the limit may still be the CR of a CRLF.
      const pending = limit - pos;
      const over = pending > this.maxLine + 1 ||
        (pending === this.maxLine + 1 && buf[limit - 1] !== CR);
      return over ? LINE_TOO_LONG : NO_LINE;
    }
    this.#frame(buf, pos, lf);
    return this.end === LINE_TOO_LONG ? LINE_TOO_LONG : lf + 1;
  }

  /**
   * Frames `buf[pos, limit)` as a last line that has no LF, as when the
   * client half-closed after it. Returns false when it is too long.
   */
  last(buf: Uint8Array, pos: number, limit: number): boolean {
    this.#frame(buf, pos, limit);
    return this.end !== LINE_TOO_LONG;
  }

  #frame(buf: Uint8Array, pos: number, lf: number): void {
    let end = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
    if (end - pos > this.maxLine) {
      this.end = LINE_TOO_LONG;
      return;
    }
    let start = pos;
    while (start < end && (buf[start] === SPACE || buf[start] === TAB)) start++;
    while (end > start && (buf[end - 1] === SPACE || buf[end - 1] === TAB)) end--;
    this.start = start;
    this.end = end;
  }
}
