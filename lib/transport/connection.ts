/**
 * One client connection over `Deno.Conn`: what the client sent is answered
 * by the protocol as soon as a read delivers it, and the replies of one read
 * go out with one socket write.
 *
 * Hot path, per read: a read into the connection's own 1 KiB buffer (a
 * lent 64 KiB one while a pipelining client fills it); the protocol frames
 * requests where they lie and copies pre-encoded answers into one output
 * buffer (or points at a lone answer where it is stored); one write; the
 * next read. Nothing is allocated, awaited or timed per request but the
 * read's and the write's promises, and a turn of the event loop after a
 * read that filled a lent buffer (more is waiting: the others go first).
 *
 * Faults stay in their connection: a socket error ends it (counted), and an
 * exception from the protocol ends it too (logged with its stack, counted),
 * never the process. A connection the server ends gets what was written
 * before: the write side is shut down after the last reply, and what the
 * client still sends is read and dropped until it closes its side or the
 * linger time passes, so that no reset can discard the replies in flight.
 *
 * @module
 */

import type { Directory } from "../directory/directory.ts";
import type { ProtocolCounters } from "../operations/counters.ts";
import type { Protocol } from "../protocol/protocol.ts";
import { nextTurn } from "../next_turn.ts";
import { formatAddress } from "./address.ts";
import { NO_DIRECTORY, Output, type OutputPool } from "./output.ts";
import {
  GROW_OWN_AFTER,
  MAX_OWN_READ_BUFFER,
  OWN_READ_BUFFER,
  type ReadBuffers,
  SHRINK_OWN_AFTER,
} from "./read_buffers.ts";

/** How the connections of one port are served. */
export interface PortPolicy {
  /** The protocol spoken there. */
  readonly protocol: Protocol;
  /** Milliseconds a connection with nothing pending may stay idle; 0: for ever. */
  readonly idleTimeout: number;
  /** Milliseconds a connection may stall mid-request (or unauthenticated); 0: for ever. */
  readonly stallTimeout: number;
  /** Turn TCP keepalive on, so that a peer that vanished is found (connections kept idle). */
  readonly keepAlive: boolean;
  /**
   * What to send a client from `peer` before closing, instead of serving
   * it (Redis's protected mode); undefined to serve it.
   */
  refuse?(peer: Deno.NetAddr): Uint8Array | undefined;
}

/** What a connection needs from the set it belongs to. */
export interface ConnectionHost {
  /** The coarse clock activity is stamped with. */
  readonly now: number;
  /** Output buffers, shared. */
  readonly pool: OutputPool;
  /** Larger read buffers, lent to connections that pipeline. */
  readonly readBuffers: ReadBuffers;
  /** What lingering connections read their clients' last bytes into, and drop. */
  readonly discard: Uint8Array;
  /** Bytes of replies buffered before they must be written. */
  readonly maxPending: number;
  /** Milliseconds a connection the server ends waits for its client to close. */
  readonly lingerTime: number;
  /** Whether requests are logged. */
  readonly verbose: boolean;
  /** The directory being served now. */
  readonly live: { readonly directory: Directory };
  /** The counters of a protocol. */
  counters(protocol: string): ProtocolCounters;
  /** Counts a connection that failed (reset, broken pipe). */
  connectionFailed(): void;
  /** A bug surfaced in a connection's handling: log it with its stack, count it. */
  faulted(connection: Connection, error: unknown): void;
  /** Calls {@linkcode Connection.paused} once `connection.pauseDeadline` has passed, unless it read again. */
  watchPause(connection: Connection): void;
  /** The memory `connection` holds changed by `delta` bytes. */
  memoryChanged(connection: Connection, delta: number): void;
  /** Called once, when the connection has ended. */
  ended(connection: Connection): void;
}

/** A client connection and its bookkeeping, as the sweep and the drain see it. */
export class Connection {
  /** How its port is served. */
  readonly port: PortPolicy;
  /** The protocol of its port. */
  readonly protocol: Protocol;
  /**
   * Coarse time of the last answer written to an admitted client, or of the
   * first bytes of a request after a rest: the idle and stall timeouts count
   * from it. Bytes that complete no request (a client dribbling a line that
   * never ends) are no activity, nor are answers before admission.
   */
  lastActive: number;
  /** Reads completed; the drain compares it between sweeps. */
  reads: number = 0;
  /** {@linkcode Connection.reads} at the previous sweep. */
  readsAtSweep: number = -1;
  /** A write is in progress. */
  writing: boolean = false;
  /** Its replies are done: it waits for the client's last bytes, until {@linkcode lingerDeadline}. */
  lingering: boolean = false;
  /** When a lingering connection is closed anyway. */
  lingerDeadline: number = 0;
  /** The connection was closed (by either side). */
  closed: boolean = false;
  /** Why the connection ended, for the log. */
  reason: string = "";
  /** When the client's silence completes its unanswered bytes (see `Protocol.pause`). */
  pauseDeadline: number = 0;
  /** Bytes it holds (buffers, the protocol's state), as counted in the host's total. */
  memory: number = 0;
  readonly #conn: Deno.TcpConn;
  readonly #host: ConnectionHost;
  readonly #output: Output;
  readonly #counters: ProtocolCounters;
  readonly #state: unknown;
  /**
   * Its own read buffer: {@linkcode OWN_READ_BUFFER}, grown (up to
   * {@linkcode MAX_OWN_READ_BUFFER}) for a client that keeps pipelining more
   * than it holds, shrunk back once it no longer does.
   */
  #own = new Uint8Array(OWN_READ_BUFFER);
  /** Reads in a row that filled its own buffer. */
  #ownFilled = 0;
  /** Reads in a row that used under a quarter of its grown own buffer. */
  #ownSlack = 0;
  /** The longest partial request the protocol may need held, plus a byte to see it is over. */
  readonly #maxRead: number;
  /** Where reads land: its own buffer, or a lent one while its input does not fit. */
  #buf: Uint8Array = this.#own;
  /** Bytes in `#buf` not yet answered. */
  #len = 0;
  /** The last read filled all the room it was given: more was likely waiting. */
  #filled = false;
  /**
   * The last write took more than one call: the client reads its replies
   * slower than they come, and is not lent a larger read buffer for more.
   */
  #backedUp = false;
  #eof = false;
  /** An answer to a pause, still writing: the next read's answers wait for it. */
  #pausing: Promise<void> | null = null;

  /** Takes over an accepted connection; {@linkcode Connection.start} starts serving it. */
  constructor(host: ConnectionHost, conn: Deno.TcpConn, port: PortPolicy) {
    this.#host = host;
    this.#conn = conn;
    this.port = port;
    this.protocol = port.protocol;
    this.lastActive = host.now;
    this.#maxRead = port.protocol.maxRequest + 1;
    this.#counters = host.counters(port.protocol.name);
    this.#output = new Output(
      host.pool,
      this.#counters,
      host.maxPending,
      host.verbose,
      () => this.peer,
    );
    this.#state = port.protocol.createState();
  }

  /** The client as `host:port`. */
  get peer(): string {
    return formatAddress(this.#conn.remoteAddr);
  }

  /** Every byte read is answered and every answer written: ending now cuts nothing. */
  get settled(): boolean {
    return this.#len === 0 && !this.writing && !this.#output.pending;
  }

  /** Mid-request, or not yet past the protocol's admission: idle timeouts apply in full. */
  get stalled(): boolean {
    return this.#len > 0 || (this.protocol.stalled?.(this.#state) ?? false);
  }

  /**
   * Starts serving; with `refusal`, sends it and ends the connection
   * instead. Never rejects: every failure ends this connection only.
   */
  start(refusal?: Uint8Array): void {
    try {
      this.#conn.setNoDelay(true);
      if (this.port.keepAlive) this.#conn.setKeepAlive(true);
    } catch (error) {
      this.#socketError("setsockopt", error);
      return;
    }
    this.#updateMemory();
    const run = refusal === undefined ? this.#serve() : this.#refuse(refusal);
    run.catch((error) => this.#fault(error));
  }

  /**
   * Closes the connection at once (once); `reason` is logged unless one was
   * set before. A write in flight keeps its buffer until it settles.
   */
  close(reason: string): void {
    if (this.reason === "") this.reason = reason;
    if (this.closed) return;
    this.closed = true;
    try {
      this.#conn.close();
    } catch {
      // Already closed by the runtime.
    }
    if (!this.writing) this.#output.reset();
    // A lent buffer is not given back: a read may still be pending into it.
    this.#buf = this.#own;
    this.#len = 0;
    this.#host.memoryChanged(this, -this.memory);
    this.memory = 0;
    this.#host.ended(this);
  }

  /**
   * Ends the connection cleanly: what was written reaches the client first.
   * The write side is shut down (the client reads its replies, then the
   * end), and what the client still sends is read and dropped until it
   * closes its side or the linger time passes.
   */
  async end(reason: string): Promise<void> {
    if (this.closed || this.lingering) return;
    if (this.reason === "") this.reason = reason;
    this.lingering = true;
    this.lingerDeadline = performance.now() + this.#host.lingerTime;
    // Its reply buffer went back to the pool with its last write.
    this.#updateMemory();
    try {
      await this.#conn.closeWrite();
      while (!this.closed && (await this.#conn.read(this.#host.discard)) !== null) {
        // Dropped: the client is told nothing more.
      }
    } catch {
      // Reset by the client, or closed at the linger deadline: done either way.
    }
    this.close(reason);
  }

  /**
   * The client has sent nothing since `pauseDeadline` was set: lets the
   * protocol answer what the pause completes, while the read stays pending.
   */
  paused(): void {
    if (
      this.closed || this.lingering || this.writing || this.#pausing || this.#len === 0 ||
      this.pauseDeadline === 0
    ) return;
    this.#pausing = this.#answerBuffered(true).catch((error) => this.#fault(error)).finally(() =>
      this.#pausing = null
    );
  }

  async #serve(): Promise<void> {
    const conn = this.#conn;
    while (!this.closed && !this.lingering) {
      if (!this.#makeRoom()) return;
      const at = this.#len;
      // Nothing held: a request that starts now has its whole stall timeout,
      // however long the connection was kept idle before it.
      const resting = !this.stalled;
      let n: number | null;
      try {
        n = await conn.read(at === 0 ? this.#buf : this.#buf.subarray(at));
      } catch (error) {
        this.#socketError("read", error);
        return;
      }
      if (this.#pausing !== null) await this.#pausing;
      if (this.closed || this.lingering) return;
      if (n === null) {
        this.#eof = true;
      } else {
        // A pause may have answered and consumed bytes while this read was pending.
        if (at !== this.#len) this.#buf.copyWithin(this.#len, at, at + n);
        this.#filled = n === this.#buf.length - at;
        if (this.#buf === this.#own) this.#noteOwnRead(n);
        this.#len += n;
        if (resting) this.lastActive = this.#host.now;
        // The client was not silent: a pause awaited before this read is over.
        this.pauseDeadline = 0;
        this.reads++;
        this.#counters.bytesIn += n;
      }
      await this.#answerBuffered(false);
      if (this.closed || this.lingering) return;
      if (this.#filled && this.#buf !== this.#own) {
        // More is queued than a lent buffer takes: a read would complete at
        // once, and its answer, write and the next read would all run before
        // any other connection's, for as long as the client keeps sending.
        // Everyone else gets a turn first.
        await nextTurn();
        if (this.closed || this.lingering) return;
      }
      this.#settle();
      if (this.#len > 0) this.#awaitPause();
    }
  }

  /** Counts a read of `n` bytes into its own buffer, for growing and shrinking it. */
  #noteOwnRead(n: number): void {
    const own = this.#own;
    this.#ownFilled = this.#filled ? this.#ownFilled + 1 : 0;
    this.#ownSlack = own.length > OWN_READ_BUFFER && n < own.length / 4 ? this.#ownSlack + 1 : 0;
  }

  async #refuse(refusal: Uint8Array): Promise<void> {
    this.#output.lone(refusal);
    await this.#write();
    if (!this.closed) await this.end("refused");
  }

  /** Asks to be called back after a silence, if the protocol would answer something then. */
  #awaitPause(): void {
    const protocol = this.protocol;
    if (!protocol.pauseAfter || !protocol.awaitsPause!(this.#state)) return;
    this.pauseDeadline = performance.now() + protocol.pauseAfter;
    this.#host.watchPause(this);
  }

  /**
   * Answers the bytes in the buffer as far as the protocol allows, writing
   * at max-pending and after the last; `pausing`: first as what a pause of
   * the client completes. Ends the connection when the protocol says so, or
   * after the client's last bytes.
   */
  async #answerBuffered(pausing: boolean): Promise<void> {
    let pos = 0;
    const output = this.#output;
    for (;;) {
      pos = this.#answer(pos, pausing);
      pausing = false;
      const more = output.full;
      if (output.pending) await this.#write();
      // Checked only now: between the write and this line, other code ran
      // (another connection past the clients' memory bound, the sweep) and
      // may have closed this one, which dropped what was left of its input.
      if (this.closed) return;
      if (output.closing !== "") {
        this.#consume(pos);
        await this.end(output.closing);
        return;
      }
      if (!more) break;
    }
    this.#consume(pos);
    if (this.#eof) await this.end("closed by the client");
  }

  /**
   * Lets the protocol answer `#buf[pos, #len)` from the directory being
   * served. Only this call sees the directory: an idle connection must not
   * keep one alive that a reload replaced.
   */
  #answer(pos: number, pausing: boolean): number {
    const output = this.#output;
    output.directory = this.#host.live.directory;
    try {
      return pausing
        ? this.protocol.pause!(this.#state, this.#buf, pos, this.#len, output)
        : this.protocol.answer(this.#state, this.#buf, pos, this.#len, this.#eof, output);
    } finally {
      output.directory = NO_DIRECTORY;
    }
  }

  /** Writes the output, all of it, unless the connection fails or is closed meanwhile. */
  async #write(): Promise<void> {
    const output = this.#output;
    const bytes = output.bytes();
    this.writing = true;
    this.#counters.writes++;
    this.#updateMemory();
    const active = this.protocol.admitted?.(this.#state) ?? true;
    let done = 0;
    try {
      let calls = 0;
      while (done < bytes.length) {
        done += await this.#conn.write(done === 0 ? bytes : bytes.subarray(done));
        calls++;
        if (active) this.lastActive = this.#host.now;
      }
      this.#backedUp = calls > 1;
    } catch (error) {
      this.#socketError("write", error);
    } finally {
      this.writing = false;
      // Only now, with no write of it in flight, may the buffer serve anyone else.
      output.reset();
      this.#counters.bytesOut += done;
    }
  }

  /** Drops the answered bytes `[0, pos)` from the buffer. */
  #consume(pos: number): void {
    if (pos === 0) return;
    if (pos < this.#len) this.#buf.copyWithin(0, pos, this.#len);
    this.#len -= pos;
  }

  /**
   * Makes room after the unanswered bytes for the next read: a lent buffer
   * when its own is full, a larger one when a request needs it. False (the
   * connection ended) when a request would outgrow what its protocol may
   * need, which the protocol should have refused.
   */
  #makeRoom(): boolean {
    const buf = this.#buf;
    const own = buf === this.#own;
    if (this.#len < buf.length) {
      // Its last read filled its own buffer: the client pipelines more than
      // that holds, and its next read gets a lent buffer, so that one read
      // takes what is queued. One that keeps doing so gets a larger buffer
      // of its own: one read, one answer, one write per round trip. A client
      // that does not keep up with its replies gets neither: more input
      // read would only wait in memory for its replies to drain.
      if (own && this.#filled && !this.#backedUp) {
        if (this.#ownFilled >= GROW_OWN_AFTER && buf.length < MAX_OWN_READ_BUFFER) {
          this.#resizeOwn(buf.length * 2);
        } else {
          this.#moveTo(this.#host.readBuffers.borrow(0));
        }
      }
      return true;
    }
    if (buf.length >= this.#maxRead) {
      this.#counters.protocolErrors++;
      this.close(`a request over ${this.#maxRead - 1} bytes`);
      return false;
    }
    const size = Math.min(this.#maxRead, buf.length * 2);
    this.#moveTo(own ? this.#host.readBuffers.borrow(size) : new Uint8Array(size));
    return true;
  }

  /** Reads land in `bigger` from now on, after the unanswered bytes, moved there. */
  #moveTo(bigger: Uint8Array): void {
    const buf = this.#buf;
    bigger.set(buf.subarray(0, this.#len));
    if (buf !== this.#own) this.#host.readBuffers.giveBack(buf);
    this.#buf = bigger;
    this.#updateMemory();
  }

  /**
   * After answering: back to its own buffer once what is left fits in it
   * and the last read took all that was queued; its own buffer halved once
   * a long run of reads used little of it.
   */
  #settle(): void {
    const buf = this.#buf;
    const own = this.#own;
    if (buf !== own && this.#len <= own.length && !this.#filled) {
      own.set(buf.subarray(0, this.#len));
      this.#host.readBuffers.giveBack(buf);
      this.#buf = own;
    } else if (buf === own && this.#ownSlack >= SHRINK_OWN_AFTER && this.#len <= own.length / 2) {
      this.#resizeOwn(own.length / 2);
    }
    this.#updateMemory();
  }

  /** Replaces its own buffer with one of `size` bytes, holding the unanswered bytes. */
  #resizeOwn(size: number): void {
    const own = new Uint8Array(size);
    own.set(this.#buf.subarray(0, this.#len));
    if (this.#buf !== this.#own) this.#host.readBuffers.giveBack(this.#buf);
    this.#own = own;
    this.#buf = own;
    this.#ownFilled = 0;
    this.#ownSlack = 0;
    this.#updateMemory();
  }

  /** Recounts what this connection holds, and tells the host (nothing, once closed). */
  #updateMemory(): void {
    if (this.closed) return;
    const memory = this.#own.length + (this.#buf === this.#own ? 0 : this.#buf.length) +
      (this.#output.buffer?.length ?? 0) + (this.protocol.memory?.(this.#state) ?? 0);
    if (memory !== this.memory) {
      const delta = memory - this.memory;
      this.memory = memory;
      this.#host.memoryChanged(this, delta);
    }
  }

  /** A read or write failed: the client reset, or the connection was closed under it. */
  #socketError(what: string, error: unknown): void {
    if (this.closed) return;
    this.#host.connectionFailed();
    this.close(`${what} failed: ${(error as Error)?.name ?? error}`);
  }

  /** An exception from the protocol or from this code: this connection ends, nothing else. */
  #fault(error: unknown): void {
    if (this.closed) return;
    this.#host.faulted(this, error);
    this.close("fault");
  }
}
