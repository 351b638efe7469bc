/**
 * Redis's protected mode: without a password, answer only clients on the
 * loopback interface, and tell the others why, in Redis's words.
 *
 * @module
 */

/**
 * What a client from another address gets before the connection is closed:
 * Redis's `-DENIED` error, with sipdir's own remedies.
 */
export const DENIED: Uint8Array = new TextEncoder().encode(
  "-DENIED sipdir is running in protected mode because protected mode is enabled and no " +
    "password is set for the default user. In this mode connections are only accepted from " +
    "the loopback interface. If you want to connect from external computers to sipdir you may " +
    "adopt one of the following solutions: 1) Set up an authentication password for the " +
    "default user (--redis-password-file FILE). 2) Disable protected mode by restarting " +
    "sipdir with the '--no-protected-mode' option, however MAKE SURE the Redis port is not " +
    "publicly accessible from the internet if you do so. NOTE: You only need to do one of " +
    "the above things in order for sipdir to start accepting connections from the outside.\r\n",
);

/**
 * Whether `hostname` is a loopback address: 127.0.0.0/8, `::1`, or an
 * IPv4-mapped loopback address (`::ffff:127.0.0.1`, as a dual-stack
 * listener reports IPv4 clients).
 *
 * @example
 * ```ts
 * import { isLoopback } from "./protected_mode.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(
 *   ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1"]
 *     .map(isLoopback),
 *   [true, true, true, true, false, false, false],
 * );
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const v4 = hostname.toLowerCase().startsWith("::ffff:") ? hostname.slice(7) : hostname;
  return v4.startsWith("127.") || hostname === "::1" || hostname === "0:0:0:0:0:0:0:1";
}

/**
 * The refusal for a client from `peer` in protected mode: {@linkcode DENIED}
 * unless it is on loopback.
 *
 * @example
 * ```ts
 * import { DENIED, protectedModeRefusal } from "./protected_mode.ts";
 * import assert from "node:assert/strict";
 * const peer = (hostname: string): Deno.NetAddr => ({ transport: "tcp", hostname, port: 5 });
 * assert.equal(protectedModeRefusal(peer("127.0.0.1")), undefined);
 * assert.equal(protectedModeRefusal(peer("192.0.2.7")), DENIED);
 * ```
 */
export function protectedModeRefusal(peer: Deno.NetAddr): Uint8Array | undefined {
  return isLoopback(peer.hostname) ? undefined : DENIED;
}
