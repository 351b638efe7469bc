/**
 * What a wire protocol is to the transport: bytes in, replies out, with
 * per-connection state. A protocol never sees a socket, so it can be tested
 * by feeding it bytes (see `testing/protocol_harness.ts`).
 *
 * @module
 */

import type { Directory } from "../directory/directory.ts";
import type { ProtocolCounters } from "../operations/counters.ts";

/**
 * Where a protocol puts its replies during one call of
 * {@linkcode Protocol.answer}. The transport implements it: it buffers the
 * replies, writes them with one socket write, and applies back-pressure.
 */
export interface Replies {
  /** The directory answering this call's lookups; it does not change during a call. */
  readonly directory: Directory;
  /** This protocol's counters. */
  readonly counters: ProtocolCounters;
  /** Debug logging is on: log each request. */
  readonly verbose: boolean;
  /** The client as `host:port`, for log lines. */
  readonly peer: string;
  /** Bytes of replies buffered in this call. */
  readonly length: number;
  /**
   * The buffered replies reached max-pending: return at once; the transport
   * writes them and calls again with the rest of the input.
   */
  readonly full: boolean;
  /** Appends bytes (copied). */
  write(bytes: Uint8Array): void;
  /** Appends one byte. */
  writeByte(byte: number): void;
  /** Appends `value` in decimal ASCII. */
  writeDecimal(value: number): void;
  /**
   * Appends `bytes[start, end)` (copied).
   */
  writeRange(bytes: Uint8Array, start: number, end: number): void;
  /**
   * Sends `bytes` as the only reply of this call, without copying them: for
   * an answer already stored in its wire form, whose bytes stay as they are
   * until the write ends, however slowly the client reads. Only valid when
   * nothing was written in this call yet and nothing will be.
   */
  lone(bytes: Uint8Array): void;
  /** Closes the connection once the replies before are written; `reason` is logged. */
  close(reason: string): void;
  /** Why {@linkcode Replies.close} was called, or "": nothing more should be answered. */
  readonly closing: string;
}

/**
 * A wire protocol. `S` is its state per connection: what a request split
 * across reads, or a reply cut by back-pressure, needs to resume.
 */
export interface Protocol<S = unknown> {
  /** Its name in counters and logs, e.g. "line". */
  readonly name: string;
  /**
   * The most bytes of one request (or of one argument) the transport must be
   * able to hold in its read buffer before the protocol can act on them.
   */
  readonly maxRequest: number;
  /** A connection's initial state. */
  createState(): S;
  /**
   * Answers the requests in `buf[pos, len)` into `replies`, in order, and
   * returns the offset of the first byte not consumed (a partial request
   * stays for the next call, with more bytes after it). Stops early when
   * `replies.full` or after `replies.close()`. `eof`: the client sent its
   * last byte; requests that need no more bytes are answered.
   */
  answer(
    state: S,
    buf: Uint8Array,
    pos: number,
    len: number,
    eof: boolean,
    replies: Replies,
  ): number;
  /**
   * Memory this connection's state holds beyond what the transport counts
   * (arguments a command keeps, a transaction's queue), in bytes: counted
   * against the limit of all clients' memory. Absent: none.
   */
  memory?(state: S): number;
  /**
   * Whether this connection is mid-request, or not yet admitted (not
   * authenticated), with no unanswered bytes: then the stall timeout
   * applies to it where idle connections are kept. Absent: never.
   */
  stalled?(state: S): boolean;
  /**
   * Whether the client is past the protocol's admission (authenticated).
   * Until it is, answers to it are no activity: the stall timeout counts
   * from its connection, however many commands it tries. Absent: always.
   */
  admitted?(state: S): boolean;
  /**
   * Milliseconds of silence after which a connection's unanswered bytes are
   * offered to {@linkcode Protocol.pause}; 0 or absent: never.
   */
  readonly pauseAfter?: number;
  /** Whether this connection's unanswered bytes may be completed by a pause. */
  awaitsPause?(state: S): boolean;
  /**
   * The client sent `buf[pos, len)` and then nothing for `pauseAfter` ms:
   * answers what that completes, like {@linkcode Protocol.answer}; returns
   * the offset of the first byte not consumed.
   */
  pause?(state: S, buf: Uint8Array, pos: number, len: number, replies: Replies): number;
}
