/**
 * A Redis 7 to compare sipdir with, for the benchmarks: ports, loading a
 * dump into it, and the median of a few rounds.
 *
 * @module
 */

/** The median of `xs`, rounded. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? s[(s.length - 1) / 2]
    : Math.round((s[s.length / 2 - 1] + s[s.length / 2]) / 2);
}

/** A free TCP port on 127.0.0.1 (free when asked). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Resolves once something listens on 127.0.0.1:`port` (up to 120 s). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Loads the dump into Redis with pipelined SETs, keyed by AOR. */
export async function loadRedis(port: number, path: string): Promise<void> {
  const encoder = new TextEncoder();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = (await Deno.readTextFile(path)).split("\n").filter((l) => l !== "");
  const buf = new Uint8Array(1 << 16);
  for (let b = 0; b < lines.length; b += 5000) {
    const batch = lines.slice(b, b + 5000);
    const resp = batch.map((line) => {
      const key = JSON.parse(line).addressOfRecord;
      return `*3\r\n$3\r\nSET\r\n$${encoder.encode(key).length}\r\n${key}\r\n$${
        encoder.encode(line).length
      }\r\n${line}\r\n`;
    }).join("");
    const bytes = encoder.encode(resp);
    for (let w = 0; w < bytes.length;) w += await conn.write(bytes.subarray(w));
    let oks = 0;
    while (oks < batch.length) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("redis closed the connection");
      for (let i = 0; i < n; i++) if (buf[i] === 0x0a) oks++;
    }
  }
  conn.close();
}

/** A redis-server started for a benchmark. */
export interface RedisPeer {
  /** Its port on 127.0.0.1. */
  port: number;
  /** Stops it and waits for its exit. */
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port, without persistence. Needs `redis-server` on PATH. */
export async function startRedis(): Promise<RedisPeer> {
  const port = freePort();
  const child = new Deno.Command("redis-server", {
    args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitForPort(port);
  return {
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}
