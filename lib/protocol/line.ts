/**
 * The line protocol: an AOR per line in, its registration as one line of
 * compact JSON (or an empty line) out, in order.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Directory, hashBytes, WARM_BATCH } from "../directory/directory.ts";
import { DEFAULTS } from "../limits.ts";
import { LINE_TOO_LONG, LineFramer, NO_LINE } from "./line_framer.ts";
import type { Protocol, Replies } from "./protocol.ts";

const logger = getLogger(["sipdir", "line"]);

const LF = 0x0a;
const CR = 0x0d;
/** The answer to an unknown AOR. */
const EMPTY_ANSWER = new Uint8Array([LF]);

/** Options of {@linkcode LineProtocol}. */
export interface LineOptions {
  /** Longest request line, in bytes before its LF or CRLF; a longer one closes the connection. Default 1024. */
  maxLine?: number;
  /**
   * Milliseconds of silence after which a client that has never sent a line
   * end gets its pending bytes answered as one request; 0 turns this off.
   * Default 100.
   */
  bareWait?: number;
}

/** A connection's state in the line protocol. */
export interface LineState {
  /**
   * The client has sent a line end: it speaks in lines, and a partial line
   * waits for its end, however long it pauses. Until then, a pause ends a
   * request, as the old server's clients expect.
   */
  lineEnded: boolean;
  /**
   * The last request was answered as a bare one (at a pause): a line end
   * that comes next completes that request, late, and is not one more.
   */
  bareAnswered: boolean;
}

/**
 * The line protocol. One instance serves every connection of a listener;
 * the state of each is in its {@linkcode LineState}.
 *
 * Clients of the Python server that sipdir replaces may send a bare AOR,
 * with no line end, and wait: that server took each `recv()` as a request.
 * Such a client gets its bytes answered as one request once it has been
 * quiet for `bareWait`. A client that has sent one line end is a line client
 * for good, so a line split across TCP segments is never cut in two.
 *
 * @example
 * ```ts
 * import { LineProtocol } from "./line.ts";
 * import { exchange } from "../../testing/protocol_harness.ts";
 * import assert from "node:assert/strict";
 * const protocol = new LineProtocol();
 * const { output } = await exchange(protocol, "0142e2fa3543cb32bf000100620002\nnobody\n");
 * assert.deepEqual(output.endsWith("}\n\n"), true);
 * ```
 */
export class LineProtocol implements Protocol<LineState> {
  /** "line". */
  readonly name = "line";
  /** Max-line, plus a CRLF. */
  readonly maxRequest: number;
  /** `bareWait`: a pause this long ends a bare request. */
  readonly pauseAfter: number;
  readonly #framer: LineFramer;
  readonly #decoder = new TextDecoder();
  readonly #hashes = new Uint32Array(WARM_BATCH);
  /** What `Directory.warm` read, kept so that its reads are not optimized away. */
  #warmth = 0;

  /** Creates the protocol with its limits. */
  constructor(options: LineOptions = {}) {
    const maxLine = options.maxLine ?? DEFAULTS.maxLine;
    this.#framer = new LineFramer(maxLine);
    this.maxRequest = maxLine + 2;
    this.pauseAfter = options.bareWait ?? DEFAULTS.bareWait;
  }

  /** A new connection's state. */
  createState(): LineState {
    return { lineEnded: false, bareAnswered: false };
  }

  /** Only a client that has never sent a line end sends bare requests. */
  awaitsPause(state: LineState): boolean {
    return !state.lineEnded;
  }

  /**
   * A client that has never sent a line end paused after `buf[pos, len)`:
   * those bytes are one request, trimmed like a line.
   */
  pause(state: LineState, buf: Uint8Array, pos: number, len: number, replies: Replies): number {
    if (state.lineEnded || pos === len) return pos;
    const next = this.answer(state, buf, pos, len, true, replies);
    state.bareAnswered = next === len;
    return next;
  }

  /**
   * Answers the complete lines of `buf[pos, len)` until they run out or the
   * replies reach max-pending; returns where it stopped. At EOF a last line
   * without LF is answered too.
   */
  answer(
    state: LineState,
    buf: Uint8Array,
    pos: number,
    len: number,
    eof: boolean,
    replies: Replies,
  ): number {
    if (state.bareAnswered && pos < len) {
      pos = this.#lateLineEnd(state, buf, pos, len, eof);
      if (state.bareAnswered) return pos;
    }
    const directory = replies.directory;
    const framer = this.#framer;
    let lookups = 0;
    let hits = 0;
    /** Where the lines already warmed end. */
    let warmed = pos;
    for (;;) {
      if (pos >= warmed) warmed = this.#warm(directory, buf, pos, len);
      let next = framer.next(buf, pos, len);
      if (next === NO_LINE) {
        if (!eof || pos === len) break;
        next = framer.last(buf, pos, len) ? len : LINE_TOO_LONG;
      } else if (next !== LINE_TOO_LONG) {
        state.lineEnded = true;
      }
      if (next === LINE_TOO_LONG) {
        replies.counters.protocolErrors++;
        replies.close(`request line over ${framer.maxLine} bytes`);
        break;
      }
      const start = framer.start;
      const end = framer.end;
      const id = end > start ? directory.find(buf, start, end) : -1;
      lookups++;
      if (id >= 0) hits++;
      if (replies.verbose) {
        logger.debug("{peer} {aor} {result}", {
          peer: replies.peer,
          aor: this.#decoder.decode(buf.subarray(start, end)),
          result: id < 0 ? "miss" : "hit",
        });
      }
      pos = next;
      if (replies.length === 0 && pos === len && !directory.isChange(id)) {
        // The only request of this read, as from a client that waits for
        // each answer: sent from where it lies, without a copy. Not a
        // change's: its bytes may be overwritten while the write is pending.
        replies.lone(id < 0 ? EMPTY_ANSWER : directory.answer(id));
        break;
      }
      if (id < 0) replies.writeByte(LF);
      else replies.write(directory.answer(id));
      if (replies.full) break;
    }
    const counters = replies.counters;
    counters.lookups += lookups;
    counters.hits += hits;
    counters.misses += lookups - hits;
    return pos;
  }

  /**
   * The bytes after a bare request that was answered: a line end (LF or
   * CRLF) there is that request's own, sent late (a segment lost and
   * retransmitted after the pause), and is dropped rather than answered as
   * an empty line, which would shift every later answer by one. Returns
   * where the next request starts; `state.bareAnswered` stays set only
   * while a lone CR waits for the byte after it.
   */
  #lateLineEnd(state: LineState, buf: Uint8Array, pos: number, len: number, eof: boolean): number {
    if (buf[pos] === LF) {
      state.lineEnded = true;
      state.bareAnswered = false;
      return pos + 1;
    }
    if (buf[pos] === CR) {
      if (pos + 1 === len && !eof) return pos;
      if (buf[pos + 1] === LF) {
        state.lineEnded = true;
        state.bareAnswered = false;
        return pos + 2;
      }
    }
    state.bareAnswered = false;
    return pos;
  }

  /**
   * Warms the lookups of the next complete lines of `buf[start, len)`, up to
   * {@linkcode WARM_BATCH} of them, unless there is only one (a lone request
   * gains nothing); returns where those lines end.
   */
  #warm(directory: Directory, buf: Uint8Array, start: number, len: number): number {
    const framer = this.#framer;
    const hashes = this.#hashes;
    let pos = start;
    let n = 0;
    while (n < WARM_BATCH) {
      const next = framer.next(buf, pos, len);
      if (next < 0 || (next === len && n === 0)) break;
      if (framer.end > framer.start) hashes[n++] = hashBytes(buf, framer.start, framer.end);
      pos = next;
    }
    if (n > 0) this.#warmth ^= directory.warm(hashes, n);
    return pos === start ? len : pos;
  }
}
