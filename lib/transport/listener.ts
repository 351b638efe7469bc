/**
 * Listening sockets, with errors that name the address.
 *
 * @module
 */

import { formatAddress } from "./address.ts";

/** What the common bind errors mean, for people. */
const BIND_ERRORS: Record<string, string> = {
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EADDRNOTAVAIL: "no such local address",
  EINVAL: "invalid address",
};

/** An address could not be listened on. */
export class ListenError extends Error {
  /** Always "ListenError". */
  override name = "ListenError";
  /** The address, as `host:port`. */
  readonly address: string;
  /** The system's error name, e.g. `EADDRINUSE`, or the runtime's message. */
  readonly code: string;

  /**
   * Creates the error; its message is `cannot listen on host:port: CODE (meaning)`.
   * @param address the address as `host:port`
   * @param code the system's error name, or what the runtime said
   * @param cause the runtime's error
   */
  constructor(address: string, code: string, cause?: unknown) {
    const meaning = BIND_ERRORS[code];
    super(`cannot listen on ${address}: ${code}${meaning ? ` (${meaning})` : ""}`, { cause });
    this.address = address;
    this.code = code;
  }
}

/**
 * Listens on `hostname:port` (0: a free port); throws a
 * {@linkcode ListenError} naming the address when it cannot (in use, not
 * permitted, no such address).
 *
 * @example
 * ```ts
 * import { listenTcp, ListenError } from "./listener.ts";
 * import assert from "node:assert/strict";
 * const listener = listenTcp("127.0.0.1", 0);
 * assert.throws(() => listenTcp("127.0.0.1", listener.addr.port), ListenError);
 * listener.close();
 * ```
 */
export function listenTcp(hostname: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname, port, transport: "tcp" });
  } catch (error) {
    const code = (error as { code?: string }).code ?? (error as Error).message ?? String(error);
    throw new ListenError(formatAddress({ hostname, port }), code, error);
  }
}
