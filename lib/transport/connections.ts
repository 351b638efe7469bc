/**
 * The connections of every listener, as one set: one `--max-clients` across
 * all ports, one idle sweep, one drain on shutdown, and an accept loop per
 * listener that survives resets and running out of descriptors.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LiveDirectory } from "../directory/live.ts";
import { describe } from "../errors.ts";
import type { Counters } from "../operations/counters.ts";
import type { Protocol } from "../protocol/protocol.ts";
import { OutputPool } from "./output.ts";
import { Session } from "./session.ts";
import { Throttle } from "./throttle.ts";

const logger = getLogger(["sipdir", "server"]);

/** During shutdown, a connection with no read for this long has nothing left to answer. */
const DRAIN_QUIET = 50;
/** Longest pause between two accept attempts when out of descriptors. */
const MAX_BACKOFF = 250;

/** Options of {@linkcode Connections}. */
export interface ConnectionsOptions {
  /** The directory answering lookups. */
  live: LiveDirectory;
  /** Where to count. */
  counters: Counters;
  /** Milliseconds without an answered request or write progress before a connection is closed. */
  idleTimeout: number;
  /** Connections served at once, across all listeners; more are accepted and closed at once. */
  maxClients: number;
  /** Bytes of replies buffered for a client before they are written and its reading pauses. */
  maxPending: number;
}

/**
 * The set of client connections of a server, whatever port and protocol
 * they came in by. Idle connections are found by one periodic sweep over
 * last-activity stamps taken from a coarse clock, not by a timer each.
 */
export class Connections {
  /** The directory answering lookups. */
  readonly live: LiveDirectory;
  /** The server's counters. */
  readonly counters: Counters;
  /** Output buffers, shared. */
  readonly pool: OutputPool = new OutputPool();
  /** Bytes of replies buffered for one client before it must wait. */
  readonly maxPending: number;
  /** Whether each connection and request is logged (debug level). */
  readonly verbose: boolean = logger.isEnabledFor("debug");
  /** Resolves once every listener stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /**
   * A clock updated by the sweep, not per request: activity is stamped with
   * it, so stamps lag real time by up to one sweep period.
   */
  now: number = performance.now();
  readonly #idleTimeout: number;
  readonly #maxClients: number;
  readonly #sessions = new Set<Session>();
  readonly #accepting = new Set<Promise<void>>();
  readonly #wakeAccept = new Set<() => void>();
  readonly #listeners = new Set<Deno.Listener>();
  readonly #period: number;
  readonly #rejectWarnings = new Throttle(10_000);
  readonly #acceptWarnings = new Throttle(10_000);
  #resolveFinished!: () => void;
  #sweeper: ReturnType<typeof setInterval>;
  #closing = false;
  #drainStart = 0;
  #drainDeadline = 0;

  /** Creates an empty set; {@linkcode Connections.listen} adds listeners. */
  constructor(options: ConnectionsOptions) {
    this.live = options.live;
    this.counters = options.counters;
    this.maxPending = options.maxPending;
    this.#idleTimeout = options.idleTimeout;
    this.#maxClients = options.maxClients;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    // Timeouts are checked to within a twentieth of their length.
    this.#period = Math.min(500, Math.max(5, Math.floor(this.#idleTimeout / 20)));
    this.#sweeper = setInterval(() => this.#sweep(), this.#period);
  }

  /** Connections open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Accepts connections from `listener` and serves them with `protocol`, until shutdown. */
  listen(listener: Deno.TcpListener, protocol: Protocol): void {
    this.#listeners.add(listener);
    const loop = this.#acceptLoop(listener, protocol);
    this.#accepting.add(loop);
    loop.finally(() => {
      this.#accepting.delete(loop);
      this.#maybeFinished();
    });
  }

  /**
   * Stops accepting, answers every request already received, then closes
   * each connection; any left after `grace` milliseconds are closed anyway.
   * Resolves when everything is closed.
   */
  shutdown(grace: number): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      for (const listener of this.#listeners) {
        try {
          listener.close();
        } catch {
          // Already closed.
        }
      }
      for (const wake of this.#wakeAccept) wake();
      this.#drainStart = performance.now();
      this.#drainDeadline = this.#drainStart + grace;
      clearInterval(this.#sweeper);
      this.#sweeper = setInterval(() => this.#sweep(), DRAIN_QUIET / 2);
      this.#maybeFinished();
    }
    return this.finished;
  }

  async #acceptLoop(listener: Deno.TcpListener, protocol: Protocol): Promise<void> {
    let backoff = 0;
    while (!this.#closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
        backoff = 0;
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) break;
        this.counters.acceptErrors++;
        if (isOutOfResources(error)) {
          // The pending connection stays queued; retrying at once would spin.
          backoff = Math.min(Math.max(backoff * 2, 10), MAX_BACKOFF);
          const count = this.#acceptWarnings.hit();
          if (count > 0) {
            logger.warn("accept failed {count} time(s), backing off: {error}", {
              count,
              error: describe(error),
            });
          }
          await this.#pause(backoff);
        } else {
          // A client that reset before accept() (NotConnected, ECONNABORTED …).
          logger.debug("accept failed: {error}", { error: describe(error) });
        }
        continue;
      }
      if (this.#sessions.size >= this.#maxClients) {
        this.#reject(conn);
        continue;
      }
      this.#start(new Session(this, conn, protocol));
    }
  }

  /** Waits `ms`, or less if shutdown begins. */
  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wakeAccept.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wakeAccept.add(wake);
    });
  }

  #start(session: Session): void {
    this.counters.accepted++;
    this.counters.open++;
    this.#sessions.add(session);
    if (this.verbose) logger.debug("{peer} connected", { peer: session.peer });
    session.run().catch((error) => {
      // A bug, not a client's doing; it must not take the process down.
      logger.error("connection handler failed: {error}", { error: describe(error) });
    }).finally(() => {
      this.#sessions.delete(session);
      this.counters.open--;
      if (this.verbose) {
        logger.debug("{peer} disconnected ({reason})", {
          peer: session.peer,
          reason: session.reason,
        });
      }
      this.#maybeFinished();
    });
  }

  #reject(conn: Deno.TcpConn): void {
    this.counters.rejected++;
    conn.close();
    const count = this.#rejectWarnings.hit();
    if (count > 0) {
      logger.warn("{count} connection(s) refused: {max} clients are connected (--max-clients)", {
        count,
        max: this.#maxClients,
      });
    }
  }

  #sweep(): void {
    const now = this.now = performance.now();
    if (this.#closing) {
      const late = now >= this.#drainDeadline;
      for (const session of this.#sessions) {
        // Quiet for a while and for a whole sweep (so at least one poll for
        // I/O ran): whatever it sent has been read and answered.
        const quiet = session.reads === session.readsAtSweep && !session.writing &&
          now - this.#drainStart >= DRAIN_QUIET;
        session.readsAtSweep = session.reads;
        if (quiet || late) session.close("shutdown");
      }
      return;
    }
    // One period more, because stamps lag: never close before the timeout.
    const limit = now - this.#idleTimeout - this.#period;
    for (const session of this.#sessions) {
      if (session.lastActive < limit && !session.closed) {
        this.counters.idleClosed++;
        session.close("idle");
      }
    }
  }

  #maybeFinished(): void {
    if (this.#closing && this.#accepting.size === 0 && this.#sessions.size === 0) {
      clearInterval(this.#sweeper);
      this.#resolveFinished();
    }
  }
}

function isOutOfResources(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOBUFS" || code === "ENOMEM";
}
