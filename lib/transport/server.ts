/**
 * A sipdir server: listeners, each speaking one protocol, over one set of
 * connections and one directory.
 *
 * @module
 */

import { Directory } from "../directory/directory.ts";
import { LiveDirectory } from "../directory/live.ts";
import { DEFAULTS } from "../limits.ts";
import { Counters } from "../operations/counters.ts";
import { LineProtocol } from "../protocol/line.ts";
import type { Protocol } from "../protocol/protocol.ts";
import { Connections } from "./connections.ts";
import { listenTcp } from "./listener.ts";

/** One port, the protocol spoken there and how its connections are kept. */
export interface ListenSpec {
  /** Address to listen on; the server's `hostname` by default. */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** The protocol of that port. */
  protocol: Protocol;
  /** Milliseconds a connection with nothing pending may stay idle; 0: for ever. The server's `idleTimeout` by default. */
  idleTimeout?: number;
  /** Milliseconds a connection may stall mid-request or unauthenticated; 0: for ever. `idleTimeout` by default. */
  stallTimeout?: number;
  /** Turn TCP keepalive on for its connections. Default false. */
  keepAlive?: boolean;
  /** What to send a client from `peer` before closing, instead of serving it; undefined to serve it. */
  refuse?: (peer: Deno.NetAddr) => Uint8Array | undefined;
}

/** Options of {@linkcode serve}. */
export interface ServeOptions {
  /** The directory to answer from: a fixed one, or a live one that reloads replace. */
  directory: Directory | LiveDirectory;
  /** Address to listen on. Default 127.0.0.1. */
  hostname?: string;
  /** Port of the line protocol, when `listen` is not given; 0 picks a free one. Default 1234. */
  port?: number;
  /** Longest request line of the line protocol, when `listen` is not given. Default 1024. */
  maxLine?: number;
  /** The ports and their protocols; default: the line protocol on `port`. */
  listen?: ListenSpec[];
  /** Milliseconds without an answered request or write progress before a connection is closed. Default 10 000. */
  idleTimeout?: number;
  /** Connections served at once, across all ports; more are accepted and closed at once. Default 10 000. */
  maxClients?: number;
  /** Bytes of replies buffered for a client before they are written and its reading pauses. Default 64 KiB. */
  maxPending?: number;
  /** Bytes all clients may hold together; past it, those holding the most are closed. Default 256 MiB. */
  maxClientMemory?: number;
  /** Milliseconds a connection the server ends waits for its client to close its side. Default 1000. */
  lingerTime?: number;
  /** Where to count; a fresh {@linkcode Counters} by default. */
  counters?: Counters;
}

/** A running sipdir server. Create it with {@linkcode serve}. */
export class Server {
  /** The first listener's address (with the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Every listener's address, by protocol name. */
  readonly addrs: ReadonlyMap<string, Deno.NetAddr>;
  /** Its counters. */
  readonly counters: Counters;
  /**
   * The directory answering lookups. Replacing it is atomic: each read's
   * lookups use one directory, and open connections stay open.
   */
  readonly live: LiveDirectory;
  /** Resolves once the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
  readonly #connections: Connections;

  /** @internal Use {@linkcode serve}. */
  constructor(connections: Connections, addrs: Map<string, Deno.NetAddr>) {
    this.#connections = connections;
    this.counters = connections.totals;
    this.live = connections.live;
    this.addrs = addrs;
    this.addr = addrs.values().next().value!;
    this.finished = connections.finished;
  }

  /** Connections open now, all ports. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Bytes all clients hold now: buffers, commands' kept arguments and queues. */
  get clientMemory(): number {
    return this.#connections.memory;
  }

  /**
   * Stops accepting, answers every request already received, then closes
   * each connection; any left after `grace` milliseconds are closed anyway.
   * Resolves when everything is closed.
   */
  shutdown(grace: number = DEFAULTS.shutdownGrace): Promise<void> {
    return this.#connections.shutdown(grace);
  }
}

/**
 * Listens on every port and starts serving. Throws if an address cannot be
 * bound (in use, not permitted); then nothing is left listening.
 *
 * @example
 * ```ts
 * import { loadDirectory } from "../loading/load.ts";
 * import { serve } from "./server.ts";
 * import assert from "node:assert/strict";
 * const { directory } = await loadDirectory({ path: "data/regs" });
 * const server = serve({ directory, port: 0 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * await conn.write(new TextEncoder().encode("nobody\n"));
 * const reply = new Uint8Array(16);
 * assert.equal(await conn.read(reply), 1); // the empty line: unknown AOR
 * conn.close();
 * await server.shutdown();
 * ```
 */
export function serve(options: ServeOptions): Server {
  const hostname = options.hostname ?? DEFAULTS.hostname;
  const live = options.directory instanceof Directory
    ? new LiveDirectory(options.directory)
    : options.directory;
  const specs: ListenSpec[] = options.listen ?? [{
    port: options.port ?? DEFAULTS.port,
    protocol: new LineProtocol({ maxLine: options.maxLine }),
  }];
  // Bind them all before serving any: a port in use leaves nothing half started.
  const listeners: Deno.TcpListener[] = [];
  try {
    for (const spec of specs) listeners.push(listenTcp(spec.hostname ?? hostname, spec.port));
  } catch (error) {
    for (const listener of listeners) listener.close();
    throw error;
  }
  const idleTimeout = options.idleTimeout ?? DEFAULTS.idleTimeout;
  const connections = new Connections({
    live,
    counters: options.counters ?? new Counters(),
    maxClients: options.maxClients ?? DEFAULTS.maxClients,
    maxPending: options.maxPending ?? DEFAULTS.maxPending,
    maxClientMemory: options.maxClientMemory ?? DEFAULTS.maxClientMemory,
    lingerTime: options.lingerTime ?? DEFAULTS.lingerTime,
  });
  const addrs = new Map<string, Deno.NetAddr>();
  specs.forEach((spec, i) => {
    const listener = listeners[i];
    addrs.set(spec.protocol.name, listener.addr);
    connections.listen({
      listener,
      protocol: spec.protocol,
      idleTimeout: spec.idleTimeout ?? idleTimeout,
      stallTimeout: spec.stallTimeout ?? spec.idleTimeout ?? idleTimeout,
      keepAlive: spec.keepAlive ?? false,
      refuse: spec.refuse,
    });
  });
  return new Server(connections, addrs);
}
