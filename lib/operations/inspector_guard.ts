/**
 * Keeping Deno's SIGUSR1 inspector shut.
 *
 * Since 2.9.2, Deno answers SIGUSR1 by opening a V8 inspector on
 * 127.0.0.1:9229, with no permission check and no way for the program to
 * refuse: anyone who may signal the process, or reach that port while it is
 * open, can run code as the service. The inspector cannot open where the
 * address is already taken, so sipdir takes it first and holds it for its
 * whole life. This holds whatever the host (cgroup v1 or v2, with or without
 * systemd's socket-bind filters).
 *
 * @module
 */

/** Where Deno opens its inspector on SIGUSR1. */
export const INSPECTOR_ADDRESS = { hostname: "127.0.0.1", port: 9229 } as const;

/** A held inspector address; {@linkcode InspectorGuard.close} lets it go. */
export interface InspectorGuard {
  /** The address held. */
  readonly addr: Deno.NetAddr;
  /** Stops holding the address. */
  close(): void;
}

/**
 * Listens on the inspector's address and closes every connection made to it
 * at once. Throws what `Deno.listen` throws when the address cannot be had
 * (`AddrInUse`, `PermissionDenied` …): the caller decides how loud to be.
 *
 * @example
 * ```ts
 * import { guardInspector } from "./inspector_guard.ts";
 * import assert from "node:assert/strict";
 * // A free port stands in for 9229 here.
 * const guard = guardInspector({ hostname: "127.0.0.1", port: 0 });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: guard.addr.port });
 * assert.deepEqual(await conn.read(new Uint8Array(1)), null); // closed at once
 * conn.close();
 * guard.close();
 * ```
 */
export function guardInspector(
  address: { hostname: string; port: number } = INSPECTOR_ADDRESS,
): InspectorGuard {
  const listener = Deno.listen({ ...address, transport: "tcp" });
  const refuse = async () => {
    try {
      for await (const conn of listener) conn.close();
    } catch {
      // Closed under the loop; nothing else ends it.
    }
  };
  refuse();
  return {
    addr: listener.addr,
    close() {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
    },
  };
}
