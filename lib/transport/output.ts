/**
 * A connection's replies between two socket writes: a buffer from a pool
 * shared by every connection, or one answer where it lies.
 *
 * @module
 */

import { type Directory, DirectoryBuilder } from "../directory/directory.ts";
import type { ProtocolCounters } from "../operations/counters.ts";
import type { Replies } from "../protocol/protocol.ts";

/** What {@linkcode Output.directory} points at between reads: nothing that a reload replaces. */
export const NO_DIRECTORY: Directory = new DirectoryBuilder(0).finish();

const OUT_SIZE = 16 * 1024;
/**
 * Bytes of spare buffers kept. A buffer is held from a connection's answers
 * to the end of their write, and one pass of the event loop may answer 64
 * connections (see `serving_thread.ts`).
 */
const SPARE_BYTES = 8 * 1024 * 1024;
/**
 * The largest spare buffer kept: the grown buffers of a long `MGET` or
 * `EXEC` are reused, not left to the garbage collector, which frees such
 * memory only once tens of megabytes of it have piled up.
 */
const KEPT_BUFFER_MAX = 1024 * 1024;

/**
 * Output buffers shared by all connections: a connection holds one only
 * between building its replies and writing them, so idle connections cost
 * none. Buffers of the usual size and grown ones are kept apart, so that a
 * lone reply is never counted as holding a grown buffer.
 *
 * @example
 * ```ts
 * import { OutputPool } from "./output.ts";
 * import assert from "node:assert/strict";
 * const pool = new OutputPool();
 * const buffer = pool.take();
 * pool.giveBack(buffer);
 * assert.equal(pool.take(), buffer);
 * const grown = pool.takeAtLeast(100_000);
 * pool.giveBack(grown);
 * assert.notEqual(pool.take(), grown);
 * assert.equal(pool.takeAtLeast(50_000), grown);
 * ```
 */
export class OutputPool {
  readonly #usual: Uint8Array[] = [];
  readonly #grown: Uint8Array[] = [];
  #spareBytes = 0;

  /** A buffer to build replies in. */
  take(): Uint8Array {
    const buffer = this.#usual.pop();
    if (buffer === undefined) return new Uint8Array(OUT_SIZE);
    this.#spareBytes -= buffer.length;
    return buffer;
  }

  /** A buffer of at least `size` bytes, for replies that outgrow theirs. */
  takeAtLeast(size: number): Uint8Array {
    const grown = this.#grown;
    const last = grown[grown.length - 1];
    if (last === undefined || last.length < size) return new Uint8Array(size);
    grown.pop();
    this.#spareBytes -= last.length;
    return last;
  }

  /** Returns a buffer that is no longer referenced by anything pending. */
  giveBack(buffer: Uint8Array): void {
    if (buffer.length > KEPT_BUFFER_MAX || this.#spareBytes + buffer.length > SPARE_BYTES) return;
    (buffer.length === OUT_SIZE ? this.#usual : this.#grown).push(buffer);
    this.#spareBytes += buffer.length;
  }
}

/**
 * The {@linkcode Replies} of one connection: what its protocol answered
 * since the last socket write.
 */
export class Output implements Replies {
  directory: Directory = NO_DIRECTORY;
  readonly counters: ProtocolCounters;
  readonly verbose: boolean;
  /** Bytes buffered in {@linkcode Output.buffer}. */
  length = 0;
  /** The pooled buffer, or null when nothing is buffered. */
  buffer: Uint8Array | null = null;
  /** A lone reply sent as is, instead of the buffer. */
  single: Uint8Array | null = null;
  /** Why to close after writing, or "". */
  closing = "";
  readonly #pool: OutputPool;
  readonly #maxPending: number;
  readonly #peer: () => string;

  /**
   * Creates the output of one connection.
   * @param pool where buffers come from
   * @param counters the protocol's counters
   * @param maxPending bytes after which the protocol must stop and let them be written
   * @param verbose whether requests are logged
   * @param peer the client as `host:port`, computed only when logged
   */
  constructor(
    pool: OutputPool,
    counters: ProtocolCounters,
    maxPending: number,
    verbose: boolean,
    peer: () => string,
  ) {
    this.#pool = pool;
    this.counters = counters;
    this.#maxPending = maxPending;
    this.verbose = verbose;
    this.#peer = peer;
  }

  get peer(): string {
    return this.#peer();
  }

  get full(): boolean {
    return this.length >= this.#maxPending;
  }

  /** Something is waiting to be written. */
  get pending(): boolean {
    return this.length > 0 || this.single !== null;
  }

  /** What to write: the lone reply, or the buffered bytes. */
  bytes(): Uint8Array {
    return this.single ?? this.buffer!.subarray(0, this.length);
  }

  write(bytes: Uint8Array): void {
    const at = this.#room(bytes.length);
    this.buffer!.set(bytes, at);
    this.length = at + bytes.length;
  }

  writeRange(bytes: Uint8Array, start: number, end: number): void {
    const at = this.#room(end - start);
    this.buffer!.set(bytes.subarray(start, end), at);
    this.length = at + end - start;
  }

  writeByte(byte: number): void {
    const at = this.#room(1);
    this.buffer![at] = byte;
    this.length = at + 1;
  }

  writeDecimal(value: number): void {
    if (value < 0) {
      this.writeByte(0x2d);
      value = -value;
    }
    let digits = 1;
    for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
    const at = this.#room(digits);
    const buffer = this.buffer!;
    for (let i = at + digits - 1; i >= at; i--) {
      buffer[i] = 0x30 + (value % 10);
      value = Math.floor(value / 10);
    }
    this.length = at + digits;
  }

  lone(bytes: Uint8Array): void {
    this.single = bytes;
  }

  close(reason: string): void {
    this.closing = reason;
  }

  /** Forgets what was written: the buffer goes back to the pool. */
  reset(): void {
    if (this.buffer) this.#pool.giveBack(this.buffer);
    this.buffer = null;
    this.single = null;
    this.length = 0;
  }

  /** Ensures room for `n` more bytes; returns where they go. */
  #room(n: number): number {
    const at = this.length;
    let buffer = this.buffer;
    if (buffer === null) {
      buffer = this.buffer = this.#pool.take();
    }
    if (at + n > buffer.length) {
      // Doubled, so that copies stay linear in what is written; but the
      // growth that crosses max-pending takes only what crosses it: the
      // protocol stops at max-pending between replies, and a client that
      // does not read then holds max-pending, not twice it.
      const doubled = buffer.length * 2;
      const size = at < this.#maxPending ? Math.min(doubled, this.#maxPending + n) : doubled;
      const bigger = this.#pool.takeAtLeast(Math.max(at + n, size));
      bigger.set(buffer.subarray(0, at));
      this.#pool.giveBack(buffer);
      this.buffer = bigger;
    }
    return at;
  }
}
