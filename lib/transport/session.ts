/**
 * One connection: what the client sent is answered by the protocol as soon
 * as the runtime delivers it, and the replies of one read go out with one
 * socket write.
 *
 * Hot path, per read: the runtime reads into this connection's own buffer
 * and calls back; the protocol frames requests where they lie and copies
 * pre-encoded answers into one output buffer (or points at a lone answer
 * where it is stored); the write completes at once when the socket takes it.
 * Nothing is allocated, awaited or timed per request. The read buffer starts
 * small, so idle connections cost little, and grows for clients that
 * pipeline.
 *
 * @module
 */

import type { Directory } from "../directory/directory.ts";
import type { Protocol } from "../protocol/protocol.ts";
import { formatAddress } from "./address.ts";
import { NO_DIRECTORY, Output, type OutputPool } from "./output.ts";
import type { ProtocolCounters } from "../operations/counters.ts";
import {
  errorName,
  lastRead,
  lastWriteWasAsync,
  type StreamHandle,
  UV_EOF,
  type WriteRequest,
} from "./native_tcp.ts";

const INITIAL_READ = 1024;
const MAX_READ = 64 * 1024;

/** What a session needs from the connection set it belongs to. */
export interface SessionHost {
  /** The coarse clock activity is stamped with. */
  readonly now: number;
  /** Output buffers, shared. */
  readonly pool: OutputPool;
  /** Bytes of replies buffered before they must be written. */
  readonly maxPending: number;
  /** Whether requests are logged. */
  readonly verbose: boolean;
  /** The directory being served now. */
  readonly live: { readonly directory: Directory };
  /** The counters of a protocol. */
  counters(protocol: string): ProtocolCounters;
  /** Counts a connection that failed (reset, broken pipe). */
  connectionFailed(): void;
  /** Calls {@linkcode Session.paused} once `session.pauseDeadline` has passed, unless it read again. */
  watchPause(session: Session): void;
  /** Called once, when the session has ended. */
  ended(session: Session): void;
}

/** A client connection and its bookkeeping, as the sweep and the drain see it. */
export class Session implements WriteRequest {
  /** The protocol of the port it came in by. */
  readonly protocol: Protocol;
  /** Coarse time of the last answered request or write progress. */
  lastActive: number;
  /** Reads completed; the drain compares it between sweeps. */
  reads: number = 0;
  /** {@linkcode Session.reads} at the previous sweep. */
  readsAtSweep: number = -1;
  /** A write is in progress. */
  writing: boolean = false;
  /** The connection was closed (by either side). */
  closed: boolean = false;
  /** Why the connection ended, for the log. */
  reason: string = "";
  /** When the client's silence completes its unanswered bytes (see `Protocol.pause`). */
  pauseDeadline: number = 0;
  readonly #handle: StreamHandle;
  readonly #peer: { hostname: string; port: number };
  readonly #host: SessionHost;
  readonly #output: Output;
  readonly #counters: ProtocolCounters;
  readonly #state: unknown;
  readonly #maxRead: number;
  #buf = new Uint8Array(INITIAL_READ);
  /** Bytes in `#buf` not yet answered. */
  #len = 0;
  /** Where reads land now: `#buf` from this offset. */
  #target = 0;
  #eof = false;
  #reading = false;
  /** Bytes of the write in progress. */
  #writingBytes = 0;

  /** Takes over an accepted connection; {@linkcode Session.start} starts reading. */
  constructor(
    host: SessionHost,
    handle: StreamHandle,
    peer: { hostname: string; port: number },
    protocol: Protocol,
  ) {
    this.#host = host;
    this.#handle = handle;
    this.#peer = peer;
    this.protocol = protocol;
    this.lastActive = host.now;
    this.#maxRead = Math.max(MAX_READ, protocol.maxRequest);
    this.#counters = host.counters(protocol.name);
    this.#output = new Output(
      host.pool,
      this.#counters,
      host.maxPending,
      host.verbose,
      () => this.peer,
    );
    this.#state = protocol.createState();
  }

  /** The client as `host:port`. */
  get peer(): string {
    return formatAddress(this.#peer);
  }

  /** Every byte read is answered and every answer written: closing now cuts nothing. */
  get settled(): boolean {
    return this.#len === 0 && !this.writing && !this.#output.pending;
  }

  /** Starts reading. */
  start(): void {
    this.#handle.setNoDelay(true);
    this.#handle.useUserBuffer(this.#buf);
    this.#handle.onread = () => this.#onRead();
    this.#resume();
  }

  /** Closes the connection (once); `reason` is logged unless one was set before. */
  close(reason: string): void {
    if (this.reason === "") this.reason = reason;
    if (this.closed) return;
    this.closed = true;
    this.#handle.onread = null;
    this.#output.reset();
    this.#handle.readStop();
    this.#handle.close();
    this.#host.ended(this);
  }

  /** The runtime finished a write that {@linkcode Session.#write} left in progress. */
  oncomplete(status: number): void {
    this.writing = false;
    if (this.closed) return;
    if (status < 0) {
      this.#fail(`write failed: ${errorName(status)}`);
      return;
    }
    this.#counters.bytesOut += this.#writingBytes;
    this.lastActive = this.#host.now;
    this.#output.reset();
    if (this.#output.closing !== "") {
      this.close(this.#output.closing);
      return;
    }
    // Answer what waited for the write, then take more.
    this.#answerBuffered(false);
    if (!this.writing && !this.closed) this.#resume();
  }

  #onRead(): void {
    const n = lastRead();
    if (n < 0) {
      if (n !== UV_EOF) {
        this.#fail(`read failed: ${errorName(n)}`);
        return;
      }
      this.#eof = true;
    } else {
      this.reads++;
      this.#len += n;
      this.#counters.bytesIn += n;
    }
    const full = n >= 0 && this.#len === this.#buf.length;
    this.#answerBuffered(false);
    if (!this.closed && this.#len > 0 && !this.writing) this.#awaitPause();
    // Grow for a client that fills the buffer (it pipelines), or for a
    // partial request that fills it (the protocol bounds that).
    if (full && !this.closed && this.#buf.length < this.#maxRead) this.#grow();
    if (!this.closed) this.#aim();
  }

  /**
   * The client has sent nothing since `pauseDeadline` was set: lets the
   * protocol answer what the pause completes.
   */
  paused(): void {
    if (this.closed || this.writing || this.#len === 0) return;
    this.#answerBuffered(true);
    if (!this.closed) this.#aim();
  }

  /** Asks to be called back after a silence, if the protocol would answer something then. */
  #awaitPause(): void {
    const protocol = this.protocol;
    if (!protocol.pauseAfter || !protocol.awaitsPause!(this.#state)) return;
    this.pauseDeadline = performance.now() + protocol.pauseAfter;
    this.#host.watchPause(this);
  }

  /**
   * Answers the bytes in the buffer as far as the protocol and back-pressure
   * allow; `pausing`: first as what a pause of the client completes.
   */
  #answerBuffered(pausing: boolean): void {
    let pos = 0;
    const output = this.#output;
    for (;;) {
      pos = this.#answer(pos, pausing);
      pausing = false;
      const more = output.full;
      if (output.pending) {
        this.lastActive = this.#host.now;
        if (!this.#write()) {
          // The socket is full: wait for the write, and read nothing meanwhile.
          this.#consume(pos);
          this.#pause();
          return;
        }
      }
      if (this.closed) return;
      if (output.closing !== "") {
        this.close(output.closing);
        return;
      }
      if (!more) break;
    }
    this.#consume(pos);
    if (this.#eof) this.close("closed by the client");
  }

  /**
   * Lets the protocol answer `#buf[pos, #len)` from the directory being
   * served. Only this call sees the directory: an idle connection must not
   * keep one alive that a reload replaced.
   */
  #answer(pos: number, pausing: boolean): number {
    const output = this.#output;
    output.directory = this.#host.live.directory;
    const next = pausing
      ? this.protocol.pause!(this.#state, this.#buf, pos, this.#len, output)
      : this.protocol.answer(this.#state, this.#buf, pos, this.#len, this.#eof, output);
    output.directory = NO_DIRECTORY;
    return next;
  }

  /** Writes the output; true when the socket took it all at once. */
  #write(): boolean {
    const output = this.#output;
    const bytes = output.bytes();
    const status = this.#handle.writeBuffer(this, bytes);
    this.#counters.writes++;
    if (status < 0) {
      this.#fail(`write failed: ${errorName(status)}`);
      return true;
    }
    if (lastWriteWasAsync()) {
      this.writing = true;
      this.#writingBytes = bytes.length;
      return false;
    }
    this.#counters.bytesOut += bytes.length;
    output.reset();
    return true;
  }

  /** Drops the answered bytes `[0, pos)` from the buffer. */
  #consume(pos: number): void {
    if (pos === 0) return;
    if (pos < this.#len) this.#buf.copyWithin(0, pos, this.#len);
    this.#len -= pos;
  }

  #grow(): void {
    const bigger = new Uint8Array(Math.min(this.#buf.length * 2, this.#maxRead));
    bigger.set(this.#buf.subarray(0, this.#len));
    this.#buf = bigger;
    this.#target = -1;
  }

  /** Makes the next read land after the unanswered bytes. */
  #aim(): void {
    if (this.#target === this.#len) return;
    this.#target = this.#len;
    this.#handle.useUserBuffer(this.#len === 0 ? this.#buf : this.#buf.subarray(this.#len));
  }

  #pause(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#handle.readStop();
  }

  #resume(): void {
    if (this.#reading || this.closed || this.#eof) return;
    this.#aim();
    const status = this.#handle.readStart();
    if (status < 0) this.#fail(`read failed: ${errorName(status)}`);
    else this.#reading = true;
  }

  #fail(reason: string): void {
    if (this.closed) return;
    this.#host.connectionFailed();
    this.close(reason);
  }
}
