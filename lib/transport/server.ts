/**
 * The TCP server: one line in, one line out, in order, for as many clients
 * as the limits allow.
 *
 * Hot path, per read: frame the lines where they lie in the read buffer, look
 * each up on its bytes, copy the pre-encoded answers into one output buffer,
 * and write it with one call. Nothing is allocated or awaited per line; idle
 * connections are found by one periodic sweep over last-activity timestamps.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { DEFAULTS as SERVE_DEFAULTS } from "../limits.ts";
import { Counters } from "../operations/counters.ts";
import { Directory } from "../directory/directory.ts";
import { LiveDirectory } from "../directory/live.ts";
import { describe } from "../errors.ts";
import { LINE_TOO_LONG, LineFramer, NO_LINE } from "../protocol/line_framer.ts";

const logger = getLogger(["sipdir", "server"]);

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** The directory to answer from: a fixed one, or a live one that reloads replace. */
  directory: Directory | LiveDirectory;
  /** Address to listen on. Default 127.0.0.1. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. Default 1234. */
  port?: number;
  /** Milliseconds without a complete request or write progress before a connection is closed. Default 10 000. */
  idleTimeout?: number;
  /** Longest request line, in bytes before its LF or CRLF; a longer one closes the connection. Default 1024. */
  maxLine?: number;
  /** Connections served at once; more are accepted and closed at once. Default 10 000. */
  maxClients?: number;
  /** Bytes of answers buffered for a client before they are written and its reading pauses. Default 1 MiB. */
  maxPending?: number;
  /** Where to count; a fresh {@linkcode Counters} by default. */
  counters?: Counters;
}

const LF = 0x0a;
/** The answer to an unknown AOR. */
const EMPTY_ANSWER = new Uint8Array([LF]);
/** Read buffers start small, so idle connections cost little, and grow for pipelining clients. */
const INITIAL_READ = 1024;
const MAX_READ = 64 * 1024;
const OUT_SIZE = 16 * 1024;
/** Spare output buffers kept, and the largest kept: at most 8 MiB idle. */
const POOL_MAX = 32;
const POOL_BUFFER_MAX = 256 * 1024;
/** During shutdown, a connection with no read for this long has nothing left to answer. */
const DRAIN_QUIET = 50;

// What #answer() left to do.
const DONE = 0;
const MORE = 1;
const CLOSE = 2;

class Client {
  readonly conn: Deno.TcpConn;
  /** Coarse time of the last complete request or write progress. */
  lastActive: number;
  /** Reads completed; the drain compares it between sweeps. */
  reads = 0;
  readsAtSweep = -1;
  writing = false;
  closed = false;
  /** Why the connection ended, for the log. */
  reason = "";
  /** Answers to write: a pooled buffer, or an answer where it lies in the directory. */
  out: Uint8Array | null = null;
  outLen = 0;
  /** `out` came from the pool and goes back to it. */
  pooled = false;
  verdict = DONE;

  constructor(conn: Deno.TcpConn, now: number) {
    this.conn = conn;
    this.lastActive = now;
  }

  get peer(): string {
    return formatAddress(this.conn.remoteAddr);
  }
}

/**
 * A running sipdir server. Create it with {@linkcode serve}.
 */
export class Server {
  /** The address it listens on (with the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Its counters. */
  readonly counters: Counters;
  /** Resolves once the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /**
   * The directory answering lookups. Replacing it is atomic: each read's
   * lookups use one directory, and open connections stay open.
   */
  readonly live: LiveDirectory;

  readonly #listener: Deno.TcpListener;
  readonly #framer: LineFramer;
  readonly #idleTimeout: number;
  readonly #maxClients: number;
  readonly #maxPending: number;
  readonly #maxRead: number;
  readonly #clients = new Set<Client>();
  readonly #pool: Uint8Array[] = [];
  readonly #decoder = new TextDecoder();
  #resolveFinished!: () => void;
  /**
   * A clock updated by the sweep, not per request: activity is stamped with
   * it, so stamps lag real time by up to one sweep period.
   */
  #now = performance.now();
  readonly #period: number;
  #sweeper: ReturnType<typeof setInterval>;
  #acceptDone = false;
  #closing = false;
  #drainStart = 0;
  #drainDeadline = 0;
  #wakeAccept: (() => void) | undefined;
  readonly #rejectWarnings = new Throttle(10_000);
  readonly #acceptWarnings = new Throttle(10_000);

  /** @internal Use {@linkcode serve}. */
  constructor(options: ServeOptions) {
    const hostname = options.hostname ?? SERVE_DEFAULTS.hostname;
    const port = options.port ?? SERVE_DEFAULTS.port;
    this.live = options.directory instanceof Directory
      ? new LiveDirectory(options.directory)
      : options.directory;
    this.counters = options.counters ?? new Counters();
    this.#idleTimeout = options.idleTimeout ?? SERVE_DEFAULTS.idleTimeout;
    const maxLine = options.maxLine ?? SERVE_DEFAULTS.maxLine;
    this.#framer = new LineFramer(maxLine);
    this.#maxRead = Math.max(MAX_READ, maxLine + 2);
    this.#maxClients = options.maxClients ?? SERVE_DEFAULTS.maxClients;
    this.#maxPending = options.maxPending ?? SERVE_DEFAULTS.maxPending;
    this.finished = new Promise((resolve) => this.#resolveFinished = resolve);
    this.#listener = Deno.listen({ hostname, port, transport: "tcp" });
    this.addr = this.#listener.addr;
    // Timeouts are checked to within a twentieth of their length.
    this.#period = Math.min(500, Math.max(5, Math.floor(this.#idleTimeout / 20)));
    this.#sweeper = setInterval(() => this.#sweep(), this.#period);
    this.#acceptLoop();
  }

  /** Connections open now. */
  get connections(): number {
    return this.#clients.size;
  }

  /**
   * Stops accepting, answers every request line already received, then
   * closes each connection; any left after `grace` milliseconds are closed
   * anyway. Resolves when everything is closed.
   */
  shutdown(grace: number = SERVE_DEFAULTS.shutdownGrace): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#listener.close();
      this.#wakeAccept?.();
      this.#drainStart = performance.now();
      this.#drainDeadline = this.#drainStart + grace;
      clearInterval(this.#sweeper);
      this.#sweeper = setInterval(() => this.#sweep(), DRAIN_QUIET / 2);
      this.#maybeFinished();
    }
    return this.finished;
  }

  async #acceptLoop(): Promise<void> {
    let backoff = 0;
    while (!this.#closing) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
        backoff = 0;
      } catch (error) {
        if (this.#closing || error instanceof Deno.errors.BadResource) break;
        this.counters.acceptErrors++;
        if (isOutOfResources(error)) {
          // The pending connection stays queued; retrying at once would spin.
          backoff = Math.min(Math.max(backoff * 2, 10), 250);
          const count = this.#acceptWarnings.hit();
          if (count > 0) {
            logger.warn("accept failed {count} time(s), backing off: {error}", {
              count,
              error: describe(error),
            });
          }
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, backoff);
            this.#wakeAccept = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.#wakeAccept = undefined;
        } else {
          // A client that reset before accept() (NotConnected, ECONNABORTED …).
          logger.debug("accept failed: {error}", { error: describe(error) });
        }
        continue;
      }
      if (this.#clients.size >= this.#maxClients) {
        this.#reject(conn);
        continue;
      }
      this.counters.accepted++;
      this.counters.open++;
      const client = new Client(conn, this.#now);
      this.#clients.add(client);
      this.#session(client).catch((error) => {
        // A bug, not a client's doing; it must not take the process down.
        logger.error("connection handler failed: {error}", { error: describe(error) });
      });
    }
    this.#acceptDone = true;
    this.#maybeFinished();
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

  async #session(client: Client): Promise<void> {
    const { conn } = client;
    const verbose = logger.isEnabledFor("debug");
    if (verbose) logger.debug("{peer} connected", { peer: client.peer });
    let buf = new Uint8Array(INITIAL_READ);
    let len = 0;
    try {
      conn.setNoDelay(true);
      for (;;) {
        const free = buf.length - len;
        const n = await conn.read(len === 0 ? buf : buf.subarray(len));
        client.reads++;
        const eof = n === null;
        if (n !== null) {
          len += n;
          this.counters.bytesIn += n;
        }
        let pos = 0;
        for (;;) {
          pos = this.#answer(client, buf, pos, len, eof, verbose);
          if (client.outLen > 0) await this.#flush(client);
          if (client.verdict !== MORE) break;
        }
        if (client.verdict === CLOSE || eof) break;
        if (pos > 0) {
          buf.copyWithin(0, pos, len);
          len -= pos;
        }
        // Grow for a client that fills the buffer (it pipelines), or for a
        // partial line that fills it (the framer bounds that by max-line).
        if (len === buf.length || (n === free && buf.length < this.#maxRead)) {
          const bigger = new Uint8Array(Math.min(buf.length * 2, this.#maxRead));
          bigger.set(buf.subarray(0, len));
          buf = bigger;
        }
      }
    } catch (error) {
      // Reads and writes fail when the sweep closes the connection under them.
      if (!client.closed) {
        this.counters.connectionErrors++;
        client.reason = describe(error);
      }
    } finally {
      if (client.out && client.pooled) this.#giveBack(client.out);
      client.out = null;
      this.#close(client, "closed by the client");
      this.#clients.delete(client);
      this.counters.open--;
      if (verbose) {
        logger.debug("{peer} disconnected ({reason})", {
          peer: client.peer,
          reason: client.reason,
        });
      }
      this.#maybeFinished();
    }
  }

  /**
   * Writes `client.out` whole. Its own frame, so that nothing in the session's
   * frame still points at an answer once it is written: an idle connection
   * must not keep the data of a reload ago alive.
   */
  async #flush(client: Client): Promise<void> {
    const out = client.out!;
    const end = client.outLen;
    client.writing = true;
    let off = 0;
    while (off < end) {
      // A lone answer is already a view of exactly its bytes.
      const written = await client.conn.write(
        off === 0 && end === out.length ? out : out.subarray(off, end),
      );
      off += written;
      this.counters.writes++;
      this.counters.bytesOut += written;
      client.lastActive = this.#now;
    }
    client.writing = false;
    client.outLen = 0;
    // Idle connections should not hold output buffers.
    if (client.pooled) this.#giveBack(out);
    client.out = null;
  }

  /**
   * Answers the complete lines of `buf[pos, len)` into `client.out` until
   * they run out or the output reaches max-pending; returns where it stopped.
   * At EOF a last line without LF is answered too.
   */
  #answer(
    client: Client,
    buf: Uint8Array,
    pos: number,
    len: number,
    eof: boolean,
    verbose: boolean,
  ): number {
    const directory = this.live.directory;
    const framer = this.#framer;
    let out: Uint8Array | null = null;
    let single: Uint8Array | null = null;
    let o = 0;
    let lookups = 0;
    let hits = 0;
    let verdict = DONE;
    for (;;) {
      let next = framer.next(buf, pos, len);
      if (next === NO_LINE) {
        if (!eof || pos === len) break;
        next = framer.last(buf, pos, len) ? len : LINE_TOO_LONG;
      }
      if (next === LINE_TOO_LONG) {
        verdict = CLOSE;
        this.#tooLong(client);
        break;
      }
      const start = framer.start;
      const end = framer.end;
      const id = end > start ? directory.find(buf, start, end) : -1;
      lookups++;
      if (id >= 0) hits++;
      if (verbose) {
        logger.debug("{peer} {aor} {result}", {
          peer: client.peer,
          aor: this.#decoder.decode(buf.subarray(start, end)),
          result: id < 0 ? "miss" : "hit",
        });
      }
      pos = next;
      if (o === 0 && pos === len) {
        // The only request of this read, as from a client that waits for
        // each answer: write the answer from where it lies, without a copy.
        single = id < 0 ? EMPTY_ANSWER : directory.answer(id);
        break;
      }
      out ??= this.#take();
      if (id < 0) {
        if (o === out.length) out = grow(out, o, 1);
        out[o++] = LF;
      } else {
        const n = directory.answerLength(id);
        if (o + n > out.length) out = grow(out, o, n);
        o = directory.copyAnswer(id, out, o);
      }
      if (o >= this.#maxPending) {
        verdict = MORE;
        break;
      }
    }
    if (lookups > 0) {
      client.lastActive = this.#now;
      this.counters.lookups += lookups;
      this.counters.hits += hits;
      this.counters.misses += lookups - hits;
    }
    if (single) {
      client.out = single;
      client.outLen = single.length;
      client.pooled = false;
    } else if (out && o > 0) {
      client.out = out;
      client.outLen = o;
      client.pooled = true;
    } else {
      if (out) this.#giveBack(out);
      client.out = null;
      client.outLen = 0;
    }
    client.verdict = verdict;
    return pos;
  }

  #tooLong(client: Client): void {
    this.counters.overlongLines++;
    client.reason = `request line over ${this.#framer.maxLine} bytes`;
  }

  #take(): Uint8Array {
    return this.#pool.pop() ?? new Uint8Array(OUT_SIZE);
  }

  #giveBack(out: Uint8Array): void {
    if (this.#pool.length < POOL_MAX && out.length <= POOL_BUFFER_MAX) this.#pool.push(out);
  }

  #sweep(): void {
    const now = this.#now = performance.now();
    if (this.#closing) {
      const late = now >= this.#drainDeadline;
      for (const client of this.#clients) {
        // Quiet for a while and for a whole sweep (so at least one poll for
        // I/O ran): whatever it sent has been read and answered.
        const quiet = client.reads === client.readsAtSweep && !client.writing &&
          now - this.#drainStart >= DRAIN_QUIET;
        client.readsAtSweep = client.reads;
        if (quiet || late) this.#close(client, "shutdown");
      }
      return;
    }
    // One period more, because stamps lag: never close before the timeout.
    const limit = now - this.#idleTimeout - this.#period;
    for (const client of this.#clients) {
      if (client.lastActive < limit && !client.closed) {
        this.counters.idleClosed++;
        this.#close(client, "idle");
      }
    }
  }

  #close(client: Client, reason: string): void {
    if (client.reason === "") client.reason = reason;
    if (client.closed) return;
    client.closed = true;
    try {
      client.conn.close();
    } catch {
      // Already gone.
    }
  }

  #maybeFinished(): void {
    if (this.#acceptDone && this.#clients.size === 0) {
      clearInterval(this.#sweeper);
      this.#resolveFinished();
    }
  }
}

/** Lets a recurring warning through at once, then at most once per interval with a count. */
class Throttle {
  readonly #interval: number;
  #last = -Infinity;
  #count = 0;

  constructor(interval: number) {
    this.#interval = interval;
  }

  /** Counts an occurrence; returns how many to report now, or 0 to stay quiet. */
  hit(): number {
    this.#count++;
    const now = performance.now();
    if (now - this.#last < this.#interval) return 0;
    this.#last = now;
    const count = this.#count;
    this.#count = 0;
    return count;
  }
}

/**
 * An address as `host:port`, with IPv6 hosts in brackets.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./server.ts";
 * formatAddress({ transport: "tcp", hostname: "::1", port: 1234 }); // "[::1]:1234"
 * ```
 */
export function formatAddress({ hostname, port }: Deno.NetAddr): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

function grow(out: Uint8Array, used: number, need: number): Uint8Array {
  const bigger = new Uint8Array(Math.max(out.length * 2, used + need));
  bigger.set(out.subarray(0, used));
  return bigger;
}

function isOutOfResources(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "EMFILE" || code === "ENFILE" || code === "ENOBUFS" || code === "ENOMEM";
}

/**
 * Listens and starts serving at once. Throws if the address cannot be bound
 * (in use, not permitted).
 *
 * @example
 * ```ts
 * import { loadDirectory } from "../loading/load.ts";
 * import { serve } from "./server.ts";
 * const { directory } = await loadDirectory({ path: "data/regs" });
 * const server = serve({ directory, port: 0 });
 * console.log(`listening on ${server.addr.port}`);
 * await server.shutdown();
 * ```
 */
export function serve(options: ServeOptions): Server {
  return new Server(options);
}
