/**
 * One connection's read/write loop: read what the client sent, let the
 * protocol answer it, write the replies with one socket write, repeat.
 *
 * Hot path, per read: the protocol frames requests where they lie in the
 * read buffer and copies pre-encoded answers into one output buffer (or
 * points at a lone answer where it is stored); nothing is allocated or
 * awaited per request. The read buffer starts small, so idle connections
 * cost little, and grows for clients that pipeline.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Protocol } from "../protocol/protocol.ts";
import { formatAddress } from "./address.ts";
import type { Connections } from "./connections.ts";
import { NO_DIRECTORY, Output } from "./output.ts";

const INITIAL_READ = 1024;
const MAX_READ = 64 * 1024;

/** A client connection and its bookkeeping, as the sweep and the drain see it. */
export class Session {
  /** The client's connection. */
  readonly conn: Deno.TcpConn;
  /** The protocol of the port it came in by. */
  readonly protocol: Protocol;
  /** Coarse time of the last answered request or write progress. */
  lastActive: number;
  /** Reads completed; the drain compares it between sweeps. */
  reads = 0;
  /** {@linkcode Session.reads} at the previous sweep. */
  readsAtSweep: number = -1;
  /** A write is in progress. */
  writing: boolean = false;
  /** The connection was closed (by either side). */
  closed: boolean = false;
  /** Why the connection ended, for the log. */
  reason = "";
  readonly #connections: Connections;
  readonly #output: Output;
  readonly #maxRead: number;

  /**
   * Creates the session of an accepted connection; {@linkcode Session.run} serves it.
   */
  constructor(connections: Connections, conn: Deno.TcpConn, protocol: Protocol) {
    this.#connections = connections;
    this.conn = conn;
    this.protocol = protocol;
    this.lastActive = connections.now;
    this.#maxRead = Math.max(MAX_READ, protocol.maxRequest);
    this.#output = new Output(
      connections.pool,
      connections.counters.protocol(protocol.name),
      connections.maxPending,
      connections.verbose,
      () => this.peer,
    );
  }

  /** The client as `host:port`. */
  get peer(): string {
    return formatAddress(this.conn.remoteAddr);
  }

  /** Reads, answers and writes until the client leaves or the connection is closed. */
  async run(): Promise<void> {
    const { conn, protocol } = this;
    const output = this.#output;
    const counters = output.counters;
    const state = protocol.createState();
    let buf = new Uint8Array(INITIAL_READ);
    let len = 0;
    try {
      conn.setNoDelay(true);
      for (;;) {
        const free = buf.length - len;
        const n = await conn.read(len === 0 ? buf : buf.subarray(len));
        this.reads++;
        const eof = n === null;
        if (n !== null) {
          len += n;
          counters.bytesIn += n;
        }
        let pos = 0;
        for (;;) {
          pos = this.#answer(state, buf, pos, len, eof);
          // Full: the protocol stopped at max-pending and has more to answer.
          const more = output.full;
          if (output.pending) {
            this.lastActive = this.#connections.now;
            await this.#flush();
          }
          if (output.closing !== "" || !more) break;
        }
        if (output.closing !== "") {
          this.reason = output.closing;
          break;
        }
        if (eof) break;
        if (pos > 0) {
          buf.copyWithin(0, pos, len);
          len -= pos;
        }
        // Grow for a client that fills the buffer (it pipelines), or for a
        // partial request that fills it (the protocol bounds that).
        if (len === buf.length || (n === free && buf.length < this.#maxRead)) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, this.#maxRead));
          bigger.set(buf.subarray(0, len));
          buf = bigger;
        }
      }
    } catch (error) {
      // Reads and writes fail when the sweep closes the connection under them.
      if (!this.closed) {
        this.#connections.counters.connectionErrors++;
        this.reason = describe(error);
      }
    } finally {
      output.reset();
      this.close("closed by the client");
    }
  }

  /** Closes the connection (once); `reason` is logged unless one was set before. */
  close(reason: string): void {
    if (this.reason === "") this.reason = reason;
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // Already gone.
    }
  }

  /**
   * Lets the protocol answer `buf[pos, len)` from the directory being served.
   * Its own frame, like {@linkcode Session.#flush}: the session's frame,
   * suspended in its next read, must not hold the directory (not even in a
   * temporary), or an idle connection keeps a replaced one alive.
   */
  #answer(state: unknown, buf: Uint8Array, pos: number, len: number, eof: boolean): number {
    const output = this.#output;
    output.directory = this.#connections.live.directory;
    const next = this.protocol.answer(state, buf, pos, len, eof, output);
    output.directory = NO_DIRECTORY;
    return next;
  }

  /**
   * Writes the output whole. Its own frame, so that nothing in the session's
   * frame still points at an answer once it is written: an idle connection
   * must not keep the data of a reload ago alive.
   */
  async #flush(): Promise<void> {
    const output = this.#output;
    const counters = output.counters;
    const bytes = output.bytes();
    this.writing = true;
    let off = 0;
    while (off < bytes.length) {
      // A lone answer is already a view of exactly its bytes.
      const written = await this.conn.write(off === 0 ? bytes : bytes.subarray(off));
      off += written;
      counters.writes++;
      counters.bytesOut += written;
      this.lastActive = this.#connections.now;
    }
    this.writing = false;
    // Idle connections hold no output buffer.
    output.reset();
  }
}
