/**
 * The connections of every listener, as one set: one `--max-clients` across
 * all ports, one idle sweep, one drain on shutdown.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { LiveDirectory } from "../directory/live.ts";
import { describe } from "../errors.ts";
import type { Counters, ProtocolCounters } from "../operations/counters.ts";
import type { Protocol } from "../protocol/protocol.ts";
import { collectGarbage } from "../operations/memory.ts";
import { OutputPool } from "./output.ts";
import { errorName, type NativeListener, peerOf, type StreamHandle } from "./native_tcp.ts";
import { Session, type SessionHost } from "./session.ts";
import { Throttle } from "./throttle.ts";

const logger = getLogger(["sipdir", "server"]);

/** During shutdown, a connection with no read for this long has nothing left to answer. */
const DRAIN_QUIET = 50;
/**
 * A client that keeps sending (a proxy under load) is never quiet. After
 * this long into the drain it is closed at the next moment it has nothing
 * unanswered and no answer half-written: it sees a clean end after a whole
 * answer and retries elsewhere, rather than waiting out the grace period to
 * be cut wherever it stands.
 */
const DRAIN_BUSY = 250;
/**
 * A closed connection's native socket state is freed only when the garbage
 * collector finalizes its handle, and little else makes garbage here, so
 * collections are rare: under connection churn, resident memory grew by
 * 100 MB and stayed (measured, 250 000 connections). The sweep collects
 * after this many connections ended (a pause of a few milliseconds), which
 * keeps memory flat.
 */
const COLLECT_AFTER_ENDED = 1000;

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
export class Connections implements SessionHost {
  /** The directory answering lookups. */
  readonly live: LiveDirectory;
  /** The server's counters. */
  readonly totals: Counters;
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
  readonly #listeners = new Set<NativeListener>();
  readonly #period: number;
  readonly #rejectWarnings = new Throttle(10_000);
  readonly #acceptWarnings = new Throttle(10_000);
  #resolveFinished!: () => void;
  #sweeper: ReturnType<typeof setInterval>;
  #closing = false;
  #endedSinceCollect = 0;
  /** Sessions waiting for their client's silence (see `Protocol.pause`), and the timer checking them. */
  readonly #pausing = new Set<Session>();
  #pauseTimer: ReturnType<typeof setInterval> | undefined;
  #drainStart = 0;
  #drainDeadline = 0;

  /** Creates an empty set; {@linkcode Connections.listen} adds listeners. */
  constructor(options: ConnectionsOptions) {
    this.live = options.live;
    this.totals = options.counters;
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

  /** The counters of `protocol`. */
  counters(protocol: string): ProtocolCounters {
    return this.totals.protocol(protocol);
  }

  /** Serves the connections `listener` accepts with `protocol`, until shutdown. */
  listen(listener: NativeListener, protocol: Protocol): void {
    this.#listeners.add(listener);
    this.totals.protocol(protocol.name);
    listener.onConnection((handle) => {
      if (typeof handle === "number") this.#acceptFailed(errorName(handle));
      else this.#accept(handle, protocol);
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
      for (const listener of this.#listeners) listener.close();
      this.#listeners.clear();
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

  /**
   * Checks `session.pauseDeadline` from now on, with a timer that runs only
   * while some session waits: no timer per connection or per byte.
   */
  watchPause(session: Session): void {
    this.#pausing.add(session);
    if (this.#pauseTimer !== undefined) return;
    const every = Math.max(5, Math.floor((session.protocol.pauseAfter ?? 100) / 10));
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

  /** A session has ended. */
  ended(session: Session): void {
    if (!this.#sessions.delete(session)) return;
    this.totals.open--;
    this.#endedSinceCollect++;
    if (this.verbose) {
      logger.debug("{peer} disconnected ({reason})", {
        peer: session.peer,
        reason: session.reason,
      });
    }
    this.#maybeFinished();
  }

  #accept(handle: StreamHandle, protocol: Protocol): void {
    if (this.#closing) {
      handle.close();
      return;
    }
    if (this.#sessions.size >= this.#maxClients) {
      this.#reject(handle);
      return;
    }
    let session: Session;
    try {
      session = new Session(this, handle, peerOf(handle), protocol);
    } catch (error) {
      // A bug, not a client's doing; it must not take the process down.
      logger.error("cannot serve a connection: {error}", { error: describe(error) });
      handle.close();
      return;
    }
    this.totals.accepted++;
    this.totals.open++;
    this.#sessions.add(session);
    if (this.verbose) logger.debug("{peer} connected", { peer: session.peer });
    session.start();
  }

  #acceptFailed(error: unknown): void {
    // Out of descriptors, or a client that reset before accept(): the
    // listener goes on accepting (re-armed by the sweep).
    this.totals.acceptErrors++;
    const count = this.#acceptWarnings.hit();
    if (count > 0) {
      logger.warn("accept failed {count} time(s), backing off: {error}", {
        count,
        error: describe(error),
      });
    }
  }

  #reject(handle: StreamHandle): void {
    this.totals.rejected++;
    handle.close();
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
        const draining = now - this.#drainStart;
        const quiet = session.reads === session.readsAtSweep && !session.writing &&
          draining >= DRAIN_QUIET;
        session.readsAtSweep = session.reads;
        if (quiet || late || (draining >= DRAIN_BUSY && session.settled)) {
          session.close("shutdown");
        }
      }
      return;
    }
    this.#checkDescriptors();
    if (this.#endedSinceCollect >= COLLECT_AFTER_ENDED) {
      this.#endedSinceCollect = 0;
      collectGarbage();
    }
    // One period more, because stamps lag: never close before the timeout.
    const limit = now - this.#idleTimeout - this.#period;
    for (const session of this.#sessions) {
      if (session.lastActive < limit && !session.closed) {
        this.totals.idleClosed++;
        session.close("idle");
      }
    }
  }

  /**
   * Out of descriptors, accept() fails and the listener stops (see
   * {@linkcode NativeListener.rearm}): say so once in a while, and re-arm
   * every listener, so that accepting resumes as soon as descriptors free up.
   */
  #checkDescriptors(): void {
    const failure = probeDescriptors();
    if (failure !== undefined) this.#acceptFailed(failure);
    for (const listener of this.#listeners) listener.rearm();
  }

  #maybeFinished(): void {
    if (this.#closing && this.#sessions.size === 0) {
      clearInterval(this.#sweeper);
      clearInterval(this.#pauseTimer);
      this.#resolveFinished();
    }
  }
}

/** Opens and closes a descriptor; returns the error when none is left. */
function probeDescriptors(): unknown {
  try {
    Deno.openSync("/dev/null").close();
    return undefined;
  } catch (error) {
    return error;
  }
}
