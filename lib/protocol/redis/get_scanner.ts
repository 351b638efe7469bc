/**
 * The keys of the `GET` commands a pipelined read starts with, found by
 * their exact shape rather than by the general parser.
 *
 * Two uses: {@linkcode GetScanner.scan} finds them to warm their lookups
 * together (`Directory.warm`) before they are answered one by one, where a
 * wrong guess would cost a little time; and the protocol answers a whole
 * multibulk GET that {@linkcode GetScanner.multibulkKey} accepts without
 * its state machine. That one decides replies: it accepts only what Redis's
 * parser accepts as `GET key`, and anything else goes to the parser.
 *
 * @module
 */

import { hashBytes } from "../../directory/directory.ts";

const STAR = 0x2a;
const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const QUOTE = 0x22;
const APOSTROPHE = 0x27;
/** `*2\r\n$3\r\nGET\r\n$`: a multibulk GET up to its key's length. */
const MULTIBULK_HEAD = 14;

/**
 * Whether `buf[at, at + 3)` is the name `GET`, in any case, as Redis
 * matches command names.
 *
 * @example
 * ```ts
 * import { isGet } from "./get_scanner.ts";
 * import assert from "node:assert/strict";
 * const bytes = new TextEncoder().encode("gEt GED");
 * assert.deepEqual([isGet(bytes, 0), isGet(bytes, 4)], [true, false]);
 * ```
 */
export function isGet(buf: Uint8Array, at: number): boolean {
  return (buf[at] | 0x20) === 0x67 && (buf[at + 1] | 0x20) === 0x65 &&
    (buf[at + 2] | 0x20) === 0x74;
}

/**
 * Hashes the keys of the `GET key` commands, multibulk
 * (`*2\r\n$3\r\nGET\r\n$n\r\nkey\r\n`, as client libraries send them) or
 * inline (`GET key\r\n`), that follow one another from a position.
 *
 * @example
 * ```ts
 * import { GetScanner } from "./get_scanner.ts";
 * import { hashBytes } from "../../directory/directory.ts";
 * import assert from "node:assert/strict";
 * const bytes = new TextEncoder().encode("*2\r\n$3\r\nGET\r\n$2\r\nk1\r\nget k2\r\nPING\r\n");
 * const scanner = new GetScanner(32);
 * assert.deepEqual(scanner.scan(bytes, 0, bytes.length), 2);
 * assert.deepEqual(scanner.hashes[1], hashBytes(bytes, 25, 27));
 * assert.deepEqual(scanner.end, 29);
 * ```
 */
export class GetScanner {
  /** The hashes of the keys found, first to last. */
  readonly hashes: Uint32Array;
  /** Where the commands found end. */
  end = 0;
  /** Where the key found last ends. */
  keyEnd = 0;

  /**
   * Creates a scanner.
   * @param batch the most keys one scan finds
   */
  constructor(batch: number) {
    this.hashes = new Uint32Array(batch);
  }

  /**
   * Finds the `GET` commands that `buf[pos, len)` starts with, up to the
   * batch size, and stops at anything else (another command, a partial
   * one); returns how many it found and sets {@linkcode GetScanner.end}.
   */
  scan(buf: Uint8Array, pos: number, len: number): number {
    const hashes = this.hashes;
    let n = 0;
    while (n < hashes.length && pos < len) {
      const keyStart = buf[pos] === STAR
        ? this.multibulkKey(buf, pos, len)
        : this.#inlineKey(buf, pos, len);
      if (keyStart < 0) break;
      hashes[n++] = hashBytes(buf, keyStart, this.keyEnd);
      pos = this.keyEnd + (buf[this.keyEnd] === CR ? 2 : 1);
    }
    this.end = pos;
    return n;
  }

  /**
   * Where the key of the multibulk GET at `pos` starts (its end in
   * {@linkcode GetScanner.keyEnd}), or -1 unless `buf[pos, len)` starts with
   * one whole, in the form Redis accepts (no leading zero in its length).
   */
  multibulkKey(buf: Uint8Array, pos: number, len: number): number {
    if (
      len - pos < MULTIBULK_HEAD || buf[pos + 1] !== 0x32 || buf[pos + 2] !== CR ||
      buf[pos + 3] !== LF || buf[pos + 4] !== DOLLAR || buf[pos + 5] !== 0x33 ||
      buf[pos + 6] !== CR || buf[pos + 7] !== LF || !isGet(buf, pos + 8) ||
      buf[pos + 11] !== CR || buf[pos + 12] !== LF || buf[pos + 13] !== DOLLAR
    ) {
      return -1;
    }
    let p = pos + MULTIBULK_HEAD;
    let length = 0;
    while (p < len && p - pos < MULTIBULK_HEAD + 9 && buf[p] >= 0x30 && buf[p] <= 0x39) {
      length = length * 10 + buf[p++] - 0x30;
    }
    const key = p + 2;
    if (key + length + 2 > len || buf[p] !== CR || buf[p + 1] !== LF) return -1;
    if (buf[key + length] !== CR || buf[key + length + 1] !== LF) return -1;
    const digits = p - pos - MULTIBULK_HEAD;
    if (digits === 0 || (digits > 1 && buf[pos + MULTIBULK_HEAD] === 0x30)) return -1;
    this.keyEnd = key + length;
    return key;
  }

  /** Where the key of the inline GET at `pos` starts (its end in `keyEnd`), or -1. */
  #inlineKey(buf: Uint8Array, pos: number, len: number): number {
    if (len - pos < 6 || !isGet(buf, pos) || buf[pos + 3] !== SPACE) return -1;
    const key = pos + 4;
    let p = key;
    while (p < len && buf[p] > SPACE && buf[p] !== QUOTE && buf[p] !== APOSTROPHE) p++;
    if (p === key || p >= len) return -1;
    if (buf[p] === CR ? p + 1 >= len || buf[p + 1] !== LF : buf[p] !== LF) return -1;
    this.keyEnd = p;
    return key;
  }
}
