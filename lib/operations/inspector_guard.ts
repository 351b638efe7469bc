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

/** Options of {@linkcode keepInspectorShut}. */
export interface KeepShutOptions {
  /** The address to hold; Deno's inspector address by default. */
  address?: { hostname: string; port: number };
  /** Milliseconds between attempts while the address is taken. Default 10 000. */
  retryInterval?: number;
  /** Called once when the first attempt fails. */
  onTaken?: (error: unknown) => void;
  /** Called when a later attempt succeeds. */
  onHeld?: () => void;
}

/**
 * Holds the inspector's address for as long as the returned guard is open;
 * while something else holds it, tries again every `retryInterval`, so that
 * the address is not left free once that other program lets it go.
 *
 * @example
 * ```ts
 * import { keepInspectorShut } from "./inspector_guard.ts";
 * import assert from "node:assert/strict";
 * const blocker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const address = { hostname: "127.0.0.1", port: blocker.addr.port };
 * const held = Promise.withResolvers<void>();
 * const guard = keepInspectorShut({ address, retryInterval: 20, onHeld: held.resolve });
 * blocker.close(); // the other program lets go
 * await held.promise;
 * const conn = await Deno.connect(address);
 * assert.equal(await conn.read(new Uint8Array(1)), null); // closed at once
 * conn.close();
 * guard.close();
 * ```
 */
export function keepInspectorShut(options: KeepShutOptions = {}): { close(): void } {
  const address = options.address ?? INSPECTOR_ADDRESS;
  let guard: InspectorGuard | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  const attempt = (): boolean => {
    try {
      guard = guardInspector(address);
      return true;
    } catch (error) {
      if (timer === undefined) options.onTaken?.(error);
      return false;
    }
  };
  if (!attempt()) {
    timer = setInterval(() => {
      if (!attempt()) return;
      clearInterval(timer);
      options.onHeld?.();
    }, options.retryInterval ?? 10_000);
  }
  return {
    close() {
      clearInterval(timer);
      guard?.close();
    },
  };
}
