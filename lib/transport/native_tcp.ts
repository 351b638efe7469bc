/**
 * TCP sockets driven through the runtime's native stream handles, the way
 * Node's own `net` module drives them (`TCPWrap` and `StreamBase`): the
 * runtime calls back when a connection arrives or bytes have been read into
 * a buffer we own, and a write goes out synchronously when the socket takes
 * it. No promise, no allocation per read or write, no `net.Socket`.
 *
 * Why not `Deno.listen` and `Deno.Conn`: each `conn.read()` is an op future
 * polled by Deno's single op-polling task under tokio's cooperative budget
 * of 128 operations per poll. With more than about 130 sockets ready at
 * once, the reads beyond the budget go back behind the next batch of fresh
 * ones, and some connections wait hundreds of milliseconds to seconds while
 * others are answered at once (measured: p99.9 1.1 s at 512 connections; the
 * tail appears between 136 and 160 connections). The native handles are
 * driven by the runtime's libuv-style loop without that budget, and are fair.
 * Why not `net.Server` and `net.Socket` on top of them: each connection then
 * costs a `net.Socket` and its stream state (resident memory settled 85 MB
 * higher under connection churn, measured), for nothing sipdir uses.
 * What they cost: after each read the runtime reads again until `EAGAIN`
 * (tokio clears readiness only then), one `recvfrom` per request more than
 * `Deno.Conn`. Pausing after a short read and resuming once the callbacks
 * are done avoids it, but then the runtime re-polls sockets rather than
 * waiting for epoll, and p99.9 grew 2–7× (measured): not done.
 *
 * These are Node's internal bindings as Deno 2.9 implements them
 * (`process.binding("tcp_wrap")`, `process.binding("stream_wrap")`): sipdir
 * pins its Deno version, every call site is in this module, and the test
 * suite exercises each of them.
 *
 * @module
 */

import process from "node:process";
import { getSystemErrorName } from "node:util";
import { formatAddress } from "./address.ts";

/** The `oncomplete` callback of a write the socket could not take at once. */
export interface WriteRequest {
  /** Called with 0, or a negative error number, once the write is done. */
  oncomplete(status: number): void;
}

/** An address as the bindings report it. */
export interface SockName {
  /** The IP address. */
  address?: string;
  /** The port. */
  port?: number;
}

/** A connected socket's native handle (`TCPWrap`). */
export interface StreamHandle {
  /** Called after a read; the byte count (or error) is in {@linkcode lastRead}. */
  onread: (() => void) | null;
  /** Starts delivering reads. Returns 0 or a negative error number. */
  readStart(): number;
  /** Stops delivering reads (back-pressure). */
  readStop(): number;
  /** Makes every read land at the start of `buffer`. */
  useUserBuffer(buffer: Uint8Array): void;
  /**
   * Writes `data`: at once when the socket takes all of it (then
   * {@linkcode lastWriteWasAsync} is false), otherwise later, calling
   * `request.oncomplete`; `data` must stay untouched until then.
   * Returns 0, or a negative error number.
   */
  writeBuffer(request: WriteRequest, data: Uint8Array): number;
  /** Sets TCP_NODELAY. */
  setNoDelay(on: boolean): number;
  /** Fills `out` with the peer's address. */
  getpeername(out: SockName): number;
  /** Closes the socket. */
  close(callback?: () => void): void;
}

interface ListenHandle {
  onconnection: ((status: number) => void) | null;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
  accept(client: StreamHandle): number;
  getsockname(out: SockName): number;
  close(callback?: () => void): void;
}

interface TcpBinding {
  TCP: new (type: number) => StreamHandle & ListenHandle;
  constants: { SOCKET: number; SERVER: number };
}

interface StreamWrapBinding {
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

const bindings = process as unknown as { binding(name: string): unknown };
const tcp = bindings.binding("tcp_wrap") as TcpBinding;
const stream = bindings.binding("stream_wrap") as StreamWrapBinding;
/** Node's shared `StreamBase` state: the last read's byte count, whether the last write was async. */
const state = stream.streamBaseState;
const READ = stream.kReadBytesOrError;
const WRITE_ASYNC = stream.kLastWriteWasAsync;

/** Node's default backlog. */
const BACKLOG = 511;

/** A read's result meaning the peer closed its side. */
export const UV_EOF: number = -4095;

/** The byte count of the read being delivered to `onread`, or a negative error number. */
export function lastRead(): number {
  return state[READ];
}

/** Whether the last `writeBuffer` left bytes to be written later. */
export function lastWriteWasAsync(): boolean {
  return state[WRITE_ASYNC] !== 0;
}

/** A negative error number from the bindings, as `EADDRINUSE` and the like. */
export function errorName(status: number): string {
  try {
    return getSystemErrorName(status);
  } catch {
    return `error ${status}`;
  }
}

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
  /** The system's error name, e.g. `EADDRINUSE`. */
  readonly code: string;

  /**
   * Creates the error; its message is `cannot listen on host:port: CODE (meaning)`.
   * @param address the address as `host:port`
   * @param code the system's error name
   */
  constructor(address: string, code: string) {
    const meaning = BIND_ERRORS[code];
    super(`cannot listen on ${address}: ${code}${meaning ? ` (${meaning})` : ""}`);
    this.address = address;
    this.code = code;
  }
}

/** A listening socket. */
export class NativeListener {
  /** Where it listens (the real port when 0 was asked). */
  readonly addr: Deno.NetAddr;
  readonly #handle: ListenHandle;

  /**
   * Listens on `hostname:port`; throws a {@linkcode ListenError} naming the
   * address when it cannot (in use, not permitted).
   */
  constructor(hostname: string, port: number) {
    this.#handle = new tcp.TCP(tcp.constants.SERVER);
    const status = hostname.includes(":")
      ? this.#handle.bind6(hostname, port, 0)
      : this.#handle.bind(hostname, port);
    const listening = status < 0 ? status : this.#handle.listen(BACKLOG);
    if (listening < 0) {
      this.#handle.close();
      throw new ListenError(formatAddress({ hostname, port }), errorName(listening));
    }
    const name: SockName = {};
    this.#handle.getsockname(name);
    this.addr = { transport: "tcp", hostname: name.address ?? hostname, port: name.port ?? port };
  }

  /**
   * Calls `onConnection` with each connection accepted (its handle, paused),
   * or with a negative error number when accepting failed.
   */
  onConnection(onConnection: (handle: StreamHandle | number) => void): void {
    this.#handle.onconnection = (status: number) => {
      if (status < 0) {
        onConnection(status);
        return;
      }
      const client = new tcp.TCP(tcp.constants.SOCKET);
      const accepted = this.#handle.accept(client);
      onConnection(accepted < 0 ? accepted : client);
    };
  }

  /**
   * Makes the listener accept again after running out of descriptors. Deno
   * 2.9's listener stops accepting for good the first time `accept()` fails
   * with EMFILE (no error reported; connections then queue until the process
   * ends, measured); `listen()` on it again resumes it. On a listener that is
   * accepting, it only sets the backlog again: harmless (measured: a million
   * calls, no memory growth, no connection accepted twice), so the sweep
   * calls it every period.
   */
  rearm(): void {
    this.#handle.listen(BACKLOG);
  }

  /** Stops listening. */
  close(): void {
    this.#handle.onconnection = null;
    this.#handle.close();
  }
}

/** The peer of a connected handle, as `{ hostname, port }`. */
export function peerOf(handle: StreamHandle): { hostname: string; port: number } {
  const name: SockName = {};
  handle.getpeername(name);
  return { hostname: name.address ?? "?", port: name.port ?? 0 };
}
