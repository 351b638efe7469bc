/**
 * The limits of a running sipdir and their defaults, in one place: the
 * command line, its help text and the server read them here.
 *
 * @module
 */

/** Defaults of the server's limits and addresses. Times are in milliseconds. */
export const DEFAULTS = {
  /** `--ip`. */
  hostname: "127.0.0.1",
  /** `--port`. */
  port: 1234,
  /** `--timeout`: no progress for this long closes a connection. */
  idleTimeout: 10_000,
  /** `--max-line`: the longest request, in bytes before its line end. */
  maxLine: 1024,
  /** `--max-clients`: connections served at once, across every port. */
  maxClients: 10_000,
  /** `--max-pending`: bytes of replies buffered for one client before they are written and its reading pauses. */
  maxPending: 64 * 1024,
  /** `--max-client-memory`: bytes all clients may hold together before those holding the most are closed. */
  maxClientMemory: 256 * 1024 * 1024,
  /** A connection the server ends waits this long for its client to close its side. */
  lingerTime: 1000,
  /** `--redis-max-args`: arguments in one Redis command, its name included. */
  redisMaxArguments: 1024 * 1024,
  /** `--redis-max-command`: memory a Redis command's kept arguments and a MULTI queue may take. */
  redisMaxCommand: 1024 * 1024,
  /** `--bare-wait`, ms: a client that never sent a line end gets its bytes answered after this silence. */
  bareWait: 100,
  /** `--reload-min-ratio`: a reload with fewer entries than this share of those served is refused. */
  reloadMinRatio: 0.5,
  /** On SIGTERM, connections get this long (or the idle timeout, if shorter) to drain. */
  shutdownGrace: 2000,
} as const;
