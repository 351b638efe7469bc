/**
 * Socket addresses in log lines and messages.
 *
 * @module
 */

/**
 * An address as `host:port`, with IPv6 hosts in brackets.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./address.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(formatAddress({ hostname: "::1", port: 1234 }), "[::1]:1234");
 * assert.deepEqual(formatAddress({ hostname: "10.0.0.1", port: 5060 }), "10.0.0.1:5060");
 * ```
 */
export function formatAddress(
  { hostname, port }: { hostname: string; port: number; transport?: string },
): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
