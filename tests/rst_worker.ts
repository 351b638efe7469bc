/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />

/**
 * Connects and resets at once, `count` times, from a worker thread: the
 * test's own event loop can then be blocked while resets queue up before
 * accept().
 *
 * @module
 */

import net from "node:net";

self.onmessage = async (event: MessageEvent<{ port: number; count: number; payload?: string }>) => {
  const { port, count, payload } = event.data;
  let done = 0;
  for (let i = 0; i < count; i++) {
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        if (payload !== undefined && i % 2 === 0) socket.write(payload);
        socket.resetAndDestroy();
        done++;
        resolve();
      });
      socket.on("error", () => resolve());
    });
  }
  self.postMessage(done);
};
