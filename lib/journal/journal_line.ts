/**
 * One line of a journal of registration changes:
 *
 * ```
 * {"seq":1042,"put":{"addressOfRecord":"a1",…}}   the registration of a1 is now this
 * {"seq":1043,"del":"a1"}                         a1 is no longer registered
 * ```
 *
 * White space is allowed between the tokens; `seq` comes first, then one of
 * `put` and `del`. Why a wrapper rather than fields added to the
 * registration: what `put` holds is stored and answered byte for byte as a
 * dump line would be (compacted if it has white space), with nothing of the
 * journal's own in it, and any registration a dump can hold, a journal can.
 *
 * @module
 */

import { aorProblem, compactInPlace, RecordScanner, unescapedString } from "../loading/record.ts";

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const COLON = 0x3a;
const COMMA = 0x2c;
/** The largest sequence number: JavaScript's integers are exact up to 2^53 − 1. */
const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

const SEQ = new TextEncoder().encode('"seq"');
const PUT = new TextEncoder().encode('"put"');
const DEL = new TextEncoder().encode('"del"');

/**
 * Reads journal lines on their bytes, one at a time; its fields describe the
 * last line read. A put's registration is compacted in place in the caller's
 * buffer, so that its bytes are the answer.
 *
 * @example
 * ```ts
 * import { JournalLine } from "./journal_line.ts";
 * import assert from "node:assert/strict";
 * const bytes = new TextEncoder().encode('{"seq": 7, "put": {"addressOfRecord": "a1"}}');
 * const line = new JournalLine();
 * assert.equal(line.readSequence(bytes, 0, bytes.length), 7);
 * assert.ok(line.read(bytes, 0, bytes.length), line.error);
 * assert.equal(line.kind, "put");
 * const text = (a: Uint8Array, s: number, e: number) => new TextDecoder().decode(a.subarray(s, e));
 * assert.equal(text(line.key, line.keyStart, line.keyEnd), "a1");
 * assert.equal(text(bytes, line.answerStart, line.answerEnd), '{"addressOfRecord":"a1"}');
 * ```
 */
export class JournalLine {
  /** The line's sequence number. */
  seq: number = 0;
  /** What the line does. */
  kind: "put" | "del" = "put";
  /** Where the AOR's bytes are: the line's buffer, or a copy when it was written with escapes. */
  key: Uint8Array = new Uint8Array(0);
  /** Start of the AOR in {@linkcode key}. */
  keyStart: number = 0;
  /** End of the AOR in {@linkcode key}. */
  keyEnd: number = 0;
  /** A put's registration, compact, in the line's buffer: its start. */
  answerStart: number = 0;
  /** … and its end (before the `\n` it is answered with). */
  answerEnd: number = 0;
  /** Why the last line was refused. */
  error: string = "";
  /** Where `seq`'s value ended: what {@linkcode read} goes on from. */
  #afterSeq = 0;
  readonly #scanner = new RecordScanner();

  /**
   * Reads the sequence number of the line `buf[start, end)` (without its
   * `\n`), and nothing more: enough to skip a line already applied. Returns
   * it, or -1 (with {@linkcode error}) when the line does not start as a
   * journal line.
   */
  readSequence(buf: Uint8Array, start: number, end: number): number {
    this.error = "";
    let i = ws(buf, start, end);
    if (buf[i] !== OPEN_BRACE) return this.#fail('not a journal line: expected {"seq":…}');
    i = ws(buf, i + 1, end);
    if (!startsWith(buf, i, end, SEQ)) return this.#fail('expected "seq" first');
    i = ws(buf, i + SEQ.length, end);
    if (buf[i] !== COLON) return this.#fail('expected : after "seq"');
    i = ws(buf, i + 1, end);
    const digits = i;
    let seq = 0;
    while (i < end && buf[i] >= 0x30 && buf[i] <= 0x39 && i - digits < 17) {
      seq = seq * 10 + buf[i] - 0x30;
      i++;
    }
    if (i === digits || (buf[digits] === 0x30 && i - digits > 1) || seq < 1 || seq > MAX_SEQUENCE) {
      return this.#fail(`"seq" must be a whole number from 1 to ${MAX_SEQUENCE}`);
    }
    this.seq = seq;
    this.#afterSeq = i;
    return seq;
  }

  /**
   * Reads the whole line `buf[start, end)` (without its `\n`): its sequence
   * number, and the registration it puts (validated as a dump line is, and
   * compacted in place) or the AOR it deletes. False, with
   * {@linkcode error}, for anything else.
   */
  read(buf: Uint8Array, start: number, end: number): boolean {
    if (this.readSequence(buf, start, end) < 0) return false;
    // The wrapper's last byte is its closing brace (white space and a CR aside).
    let close = end;
    while (close > start && isSpace(buf[close - 1])) close--;
    close--;
    if (close < start || buf[close] !== CLOSE_BRACE) return this.#refused("expected } at the end");
    let i = ws(buf, this.#afterSeq, close);
    if (buf[i] !== COMMA) return this.#refused('expected , after "seq"');
    i = ws(buf, i + 1, close);
    const put = startsWith(buf, i, close, PUT);
    if (!put && !startsWith(buf, i, close, DEL)) return this.#refused('expected "put" or "del"');
    i = ws(buf, i + PUT.length, close);
    if (buf[i] !== COLON) return this.#refused(`expected : after "${put ? "put" : "del"}"`);
    i = ws(buf, i + 1, close);
    let valueEnd = close;
    while (valueEnd > i && isSpace(buf[valueEnd - 1])) valueEnd--;
    return put ? this.#put(buf, i, valueEnd) : this.#del(buf, i, valueEnd);
  }

  /** `"put"`'s value, `buf[start, end)`: a registration, as a dump line. */
  #put(buf: Uint8Array, start: number, end: number): boolean {
    const scanner = this.#scanner;
    if (!scanner.scan(buf, start, end)) return this.#refused(`"put": ${scanner.error}`);
    let answerEnd = scanner.contentEnd;
    if (!scanner.compact) {
      answerEnd = compactInPlace(buf, start, answerEnd);
      scanner.scan(buf, start, answerEnd);
    }
    this.kind = "put";
    this.answerStart = start;
    this.answerEnd = answerEnd;
    return this.#keyAt(buf, scanner.aorStart, scanner.aorEnd, scanner.aorEscaped);
  }

  /** `"del"`'s value, `buf[start, end)`: the AOR, a JSON string. */
  #del(buf: Uint8Array, start: number, end: number): boolean {
    if (buf[start] !== QUOTE) return this.#refused('"del": expected the AOR as a string');
    let i = start + 1;
    let escaped = false;
    while (i < end && buf[i] !== QUOTE) {
      if (buf[i] === BACKSLASH) {
        escaped = true;
        i++;
      } else if (buf[i] < 0x20) {
        return this.#refused('"del": a control character in the AOR');
      }
      i++;
    }
    if (i !== end - 1) return this.#refused('"del": expected the AOR as one string');
    if (escaped) {
      try {
        JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(start, end)));
      } catch {
        return this.#refused('"del": not a valid JSON string');
      }
    }
    this.kind = "del";
    return this.#keyAt(buf, start + 1, end - 1, escaped);
  }

  /** The AOR at `buf[start, end)`, decoded when written with escapes; checked. */
  #keyAt(buf: Uint8Array, start: number, end: number, escaped: boolean): boolean {
    if (escaped) {
      this.key = unescapedString(buf, start, end);
      this.keyStart = 0;
      this.keyEnd = this.key.length;
    } else {
      this.key = buf;
      this.keyStart = start;
      this.keyEnd = end;
    }
    const problem = aorProblem(this.key, this.keyStart, this.keyEnd);
    return problem === "" || this.#refused(problem);
  }

  #fail(reason: string): -1 {
    this.error = reason;
    return -1;
  }

  #refused(reason: string): false {
    this.error = reason;
    return false;
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** The first offset from `i` that is not JSON white space (or `end`). */
function ws(buf: Uint8Array, i: number, end: number): number {
  while (i < end && isSpace(buf[i])) i++;
  return i;
}

function startsWith(buf: Uint8Array, at: number, end: number, word: Uint8Array): boolean {
  if (end - at < word.length) return false;
  for (let i = 0; i < word.length; i++) if (buf[at + i] !== word[i]) return false;
  return true;
}
