/**
 * The connections of every listener, as one set: one `--max-clients` and
 * one bound on all clients' memory across all ports, one idle sweep, one
 * drain on shutdown.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LiveDirectory } from "../directory/live.ts";
import { describe } from "../errors.ts";
import type { Counters, ProtocolCounters } from "../operations/counters.ts";
import { Connection, type ConnectionHost, type PortPolicy } from "./connection.ts";
import { OutputPool } from "./output.ts";
import { ReadBuffers } from "./read_buffers.ts";
import { Throttle } from "./throttle.ts";

const logger = getLogger(["sipdir", "server"]);

/** During shutdown, a connection with no read for this long has nothing left to answer. */
const DRAIN_QUIET = 50;
/**
 * A client that keeps sending (a proxy under load) is never quiet. After
 * this long into the drain it is ended at the next moment it has nothing
 * unanswered and no answer half-written: it sees a clean end after a whole
 * answer and retries elsewhere, rather than waiting out the grace period to
 * be cut wherever it stands.
 */
const DRAIN_BUSY = 250;
/** Accepting again after a failure (out of descriptors) waits this long at first, doubling. */
const ACCEPT_BACKOFF_MIN = 5;
/** … up to this. */
const ACCEPT_BACKOFF_MAX = 250;
/** Accept errors that mean the process or the system ran out of something. */
const EXHAUSTED: ReadonlySet<string> = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** Options of {@linkcode Connections}. */
export interface ConnectionsOptions {
  /** The directory answering lookups. */
  live: LiveDirectory;
  /** Where to count. */
  counters: Counters;
  /** Connections served at once, across all listeners; more are accepted and closed at once. */
  maxClients: number;
  /** Bytes of replies buffered for a client before they are written and its reading pauses. */
  maxPending: number;
  /**
   * Bytes all clients may hold together (read and reply buffers, commands'
   * kept arguments and queues); past it, the connections holding the most
   * are closed.
   */
  maxClientMemory: number;
  /** Milliseconds a connection the server ends waits for its client to close its side. */
  lingerTime: number;
}

/** A listener and how its connections are served. */
export interface Port extends PortPolicy {
  /** Where connections come from. */
  readonly listener: Deno.TcpListener;
}

/**
 * The set of client connections of a server, whatever port and protocol
 * they came in by. Idle connections are found by one periodic sweep over
 * last-activity stamps taken from a coarse clock, not by a timer each.
 */
export class Connections implements ConnectionHost {
  /** The directory answering lookups. */
  readonly live: LiveDirectory;
  /** The server's counters. */
  readonly totals: Counters;
  /** Output buffers, shared. */
  readonly pool: OutputPool = new OutputPool();
  /** Read buffers lent to connections that pipeline. */
  readonly readBuffers: ReadBuffers = new ReadBuffers();
  /** What lingering connections read into and drop. */
  readonly discard: Uint8Array = new Uint8Array(16 * 1024);
  /** Bytes of replies buffered for one client before it must wait. */
  readonly maxPending: number;
  /** Milliseconds a connection the server ends waits for its client's end. */
  readonly lingerTime: number;
  /** Whether each connection and request is logged (debug level). */
  readonly verbose: boolean = logger.isEnabledFor("debug");
  /** Resolves once every listener stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /**
   * A clock updated by the sweep, not per request: activity is stamped with
   * it, so stamps lag real time by up to one sweep period.
   */
  now: number = performance.now();
  /** Bytes all connections hold now. */
  memory: number = 0;
  readonly #maxClients: number;
  readonly #maxClientMemory: number;
  readonly #connections = new Set<Connection>();
  readonly #ports: Port[] = [];
  #period: number = 500;
  readonly #rejectWarnings = new Throttle(10_000);
  readonly #acceptWarnings = new Throttle(10_000);
  readonly #deniedWarnings = new Throttle(10_000);
  readonly #evictWarnings = new Throttle(10_000);
  readonly #faultWarnings = new Throttle(10_000);
  #resolveFinished!: () => void;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #closing = false;
  #evicting = false;
  /** Connections waiting for their client's silence (see `Protocol.pause`), and the timer checking them. */
  readonly #pausing = new Set<Connection>();
  #pauseTimer: ReturnType<typeof setInterval> | undefined;
  #drainStart = 0;
  #drainDeadline = 0;

  /** Creates an empty set; {@linkcode Connections.listen} adds listeners. */
  constructor(options: ConnectionsOptions) {
    this.live = options.live;
    this.totals = options.counters;
    this.maxPending = options.maxPending;
    this.lingerTime = options.lingerTime;
    this.#maxClients = options.maxClients;
    this.#maxClientMemory = options.maxClientMemory;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
  }

  /** Connections open now. */
  get size(): number {
    return this.#connections.size;
  }

  /** The counters of `protocol`. */
  counters(protocol: string): ProtocolCounters {
    return this.totals.protocol(protocol);
  }

  /** Serves the connections `port.listener` accepts, until shutdown. */
  listen(port: Port): void {
    this.#ports.push(port);
    this.totals.protocol(port.protocol.name);
    // Timeouts are checked to within a twentieth of the shortest, and lingering within a tenth.
    const timeouts = [port.idleTimeout, port.stallTimeout, this.lingerTime].filter((t) => t > 0);
    const period = Math.min(500, Math.max(5, Math.floor(Math.min(...timeouts) / 20)));
    if (this.#sweeper === undefined || period < this.#period) {
      this.#period = period;
      clearInterval(this.#sweeper);
      this.#sweeper = setInterval(() => this.#sweep(), period);
    }
    this.#acceptLoop(port).catch((error) => {
      logger.error("stopped accepting on a port: {error}\n{stack}", {
        error: describe(error),
        stack: (error as Error)?.stack ?? "",
      });
    });
  }

  /**
   * Stops accepting, answers every request already received, then ends
   * each connection; any left after `grace` milliseconds are closed anyway.
   * Resolves when everything is closed.
   */
  shutdown(grace: number): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      for (const port of this.#ports) {
        try {
          port.listener.close();
        } catch {
          // Already closed.
        }
      }
      this.#drainStart = performance.now();
      this.#drainDeadline = this.#drainStart + grace;
      clearInterval(this.#sweeper);
      this.#sweeper = setInterval(() => this.#sweep(), DRAIN_QUIET / 2);
      this.#maybeFinished();
    }
    return this.finished;
  }

  /** Counts a connection that failed (reset, broken pipe). */
  connectionFailed(): void {
    this.totals.connectionErrors++;
  }

  /** A bug surfaced in a connection: logged with its stack (at most every 10 s), counted. */
  faulted(connection: Connection, error: unknown): void {
    this.totals.connectionFaults++;
    const count = this.#faultWarnings.hit();
    if (count > 0) {
      logger.error("{count} connection(s) closed by a fault, last {peer}: {error}\n{stack}", {
        count,
        peer: connection.peer,
        error: describe(error),
        stack: (error as Error)?.stack ?? "",
      });
    }
  }

  /**
   * Checks `connection.pauseDeadline` from now on, with a timer that runs
   * only while some connection waits: no timer per connection or per byte.
   */
  watchPause(connection: Connection): void {
    this.#pausing.add(connection);
    if (this.#pauseTimer !== undefined) return;
    const every = Math.max(5, Math.floor((connection.protocol.pauseAfter ?? 100) / 10));
    this.#pauseTimer = setInterval(() => {
      const now = performance.now();
      for (const waiting of this.#pausing) {
        if (waiting.closed) {
          this.#pausing.delete(waiting);
        } else if (now >= waiting.pauseDeadline) {
          this.#pausing.delete(waiting);
          waiting.paused();
        }
      }
      if (this.#pausing.size === 0) {
        clearInterval(this.#pauseTimer);
        this.#pauseTimer = undefined;
      }
    }, every);
  }

  /**
   * The memory a connection holds changed. Past the bound on all clients'
   * memory, the ones holding the most are closed, soon after (not inside a
   * connection's own call).
   */
  memoryChanged(_connection: Connection, delta: number): void {
    this.memory += delta;
    if (this.memory > this.#maxClientMemory && !this.#evicting) {
      this.#evicting = true;
      queueMicrotask(() => this.#evict());
    }
  }

  /** A connection has ended. */
  ended(connection: Connection): void {
    if (!this.#connections.delete(connection)) return;
    this.totals.open--;
    if (this.verbose) {
      logger.debug("{peer} disconnected ({reason})", {
        peer: connection.peer,
        reason: connection.reason,
      });
    }
    this.#maybeFinished();
  }

  async #acceptLoop(port: Port): Promise<void> {
    let backoff = 0;
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await port.listener.accept();
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) return;
        // A client that reset before accept() (ENOTCONN, ECONNABORTED): go
        // on at once. Out of descriptors or memory: go on after a pause that
        // lets them free up, rather than spin.
        this.#acceptFailed(error);
        if (!EXHAUSTED.has((error as { code?: string }).code ?? "")) continue;
        backoff = Math.min(ACCEPT_BACKOFF_MAX, Math.max(ACCEPT_BACKOFF_MIN, backoff * 2));
        await new Promise((resolve) => setTimeout(resolve, backoff));
        continue;
      }
      backoff = 0;
      this.#accept(conn, port);
    }
  }

  #accept(conn: Deno.TcpConn, port: Port): void {
    if (this.#closing) {
      conn.close();
      return;
    }
    if (this.#connections.size >= this.#maxClients) {
      this.#reject(conn);
      return;
    }
    const connection = new Connection(this, conn, port);
    this.totals.accepted++;
    this.totals.open++;
    this.#connections.add(connection);
    const refusal = port.refuse?.(conn.remoteAddr);
    if (refusal !== undefined) {
      this.totals.denied++;
      const count = this.#deniedWarnings.hit();
      if (count > 0) {
        logger.warn(
          "{count} connection(s) to the {protocol} port refused, last from {peer}: protected " +
            "mode answers only loopback clients without a password (--redis-password-file, " +
            "or --no-protected-mode)",
          { count, protocol: port.protocol.name, peer: connection.peer },
        );
      }
    } else if (this.verbose) {
      logger.debug("{peer} connected", { peer: connection.peer });
    }
    connection.start(refusal);
  }

  #acceptFailed(error: unknown): void {
    this.totals.acceptErrors++;
    const count = this.#acceptWarnings.hit();
    if (count > 0) {
      logger.warn("accept failed {count} time(s), backing off: {error}", {
        count,
        error: describe(error),
      });
    }
  }

  #reject(conn: Deno.TcpConn): void {
    this.totals.rejected++;
    conn.close();
    const count = this.#rejectWarnings.hit();
    if (count > 0) {
      logger.warn("{count} connection(s) refused: {max} clients are connected (--max-clients)", {
        count,
        max: this.#maxClients,
      });
    }
  }

  /** Closes the connections holding the most memory until all hold less than the bound. */
  #evict(): void {
    this.#evicting = false;
    let evicted = 0;
    let largest = 0;
    while (this.memory > this.#maxClientMemory) {
      let most: Connection | undefined;
      for (const connection of this.#connections) {
        if (!connection.closed && (most === undefined || connection.memory > most.memory)) {
          most = connection;
        }
      }
      if (most === undefined || most.memory === 0) break;
      largest = Math.max(largest, most.memory);
      most.close("client memory over --max-client-memory");
      evicted++;
    }
    this.totals.evicted += evicted;
    const count = evicted > 0 ? this.#evictWarnings.hit() : 0;
    if (count > 0) {
      logger.warn(
        "closed {count} connection(s) holding the most memory (up to {largest} bytes): " +
          "all clients held over {max} bytes (--max-client-memory)",
        { count, largest, max: this.#maxClientMemory },
      );
    }
  }

  #sweep(): void {
    const now = this.now = performance.now();
    if (this.#closing) {
      this.#sweepDraining(now);
      return;
    }
    // One period more, because stamps lag: never close before the timeout.
    const slack = this.#period;
    for (const connection of this.#connections) {
      if (connection.lingering) {
        if (now >= connection.lingerDeadline) connection.close(connection.reason);
        continue;
      }
      const port = connection.port;
      const timeout = connection.stalled ? port.stallTimeout : port.idleTimeout;
      if (timeout > 0 && connection.lastActive < now - timeout - slack && !connection.closed) {
        this.totals.idleClosed++;
        connection.close("idle");
      }
    }
  }

  #sweepDraining(now: number): void {
    const late = now >= this.#drainDeadline;
    const draining = now - this.#drainStart;
    for (const connection of this.#connections) {
      if (late || (connection.lingering && now >= connection.lingerDeadline)) {
        connection.close(connection.reason || "shutdown");
        continue;
      }
      if (connection.lingering) continue;
      // Quiet for a while and for a whole sweep (so at least one poll for
      // I/O ran): whatever it sent has been read and answered.
      const quiet = connection.reads === connection.readsAtSweep && !connection.writing &&
        draining >= DRAIN_QUIET;
      connection.readsAtSweep = connection.reads;
      if (quiet || (draining >= DRAIN_BUSY && connection.settled)) {
        void connection.end("shutdown");
      }
    }
  }

  #maybeFinished(): void {
    if (this.#closing && this.#connections.size === 0) {
      clearInterval(this.#sweeper);
      clearInterval(this.#pauseTimer);
      this.#resolveFinished();
    }
  }
}
