/**
 * The real `redis-benchmark` against Redis 7 and sipdir's Redis port, in one
 * run, on the same data: GET of keys shaped as `redis-benchmark -r` makes
 * them (`key:000000000042`), at pipeline 1 and 16, alternating rounds.
 *
 * ```sh
 * deno run -A bench/redis_benchmark.ts [--entries 100000] [--requests 200000]
 *   [--connections 32] [--rounds 3]
 * ```
 *
 * Needs `redis-server` and `redis-benchmark` (Debian: `redis-server`,
 * `redis-tools`). Prints one line per round and the medians' ratios,
 * sipdir ÷ Redis (above 1 is better for sipdir).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { SipdirProcess } from "../testing/sipdir_process.ts";
import { loadRedis, startRedis } from "./redis_peer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    entries: { type: "string", default: "100000" },
    requests: { type: "string", default: "200000" },
    connections: { type: "string", default: "32" },
    rounds: { type: "string", default: "3" },
  },
});
const entries = Number(values.entries);
const rounds = Number(values.rounds);

/** One registration per `redis-benchmark -r` key, the size of real ones. */
async function writeDump(path: string): Promise<void> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  let text = "";
  for (let i = 0; i < entries; i++) {
    const aor = `key:${String(i).padStart(12, "0")}`;
    text += JSON.stringify({
      addressOfRecord: aor,
      contact: `<sip:${aor}@10.0.${i % 250}.${i % 200};transport=tcp>`,
      path: ["<sip:edge-1.example.net;lr>"],
      userAgent: "PolycomVVX-VVX_600-UA/5.4.5.6770",
      created: "2026-11-28T09:00:00.000Z",
      padding: "x".repeat(480),
    }) + "\n";
    if (i % 10_000 === 9_999 || i === entries - 1) {
      const bytes = encoder.encode(text);
      for (let w = 0; w < bytes.length;) w += await file.write(bytes.subarray(w));
      text = "";
    }
  }
  file.close();
}

/** Runs redis-benchmark for GET against `port`; returns requests per second. */
async function benchmark(port: number, pipeline: number): Promise<{ rps: number; p50: number }> {
  const args = ["-h", "127.0.0.1", "-p", String(port), "-t", "get", "-n", values.requests!];
  args.push("-r", String(entries), "-c", values.connections!, "-P", String(pipeline), "-q");
  const output = await new Deno.Command("redis-benchmark", { args }).output();
  const text = new TextDecoder().decode(output.stdout);
  const match = text.match(/GET: ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/);
  if (!match) {
    throw new Error(`redis-benchmark said: ${text}${new TextDecoder().decode(output.stderr)}`);
  }
  return { rps: Number(match[1]), p50: Number(match[2] ?? NaN) };
}

const dir = await Deno.makeTempDir({ prefix: "sipdir-redis-bench-" });
const regs = `${dir}/regs`;
await writeDump(regs);
const redis = await startRedis();
const sipdir = await SipdirProcess.start(["-d", regs, "-p", "0", "--redis-port", "0"]);
try {
  await loadRedis(redis.port, regs);
  await sipdir.port(120_000);
  const sipdirPort = Number((await sipdir.waitFor(/Redis protocol on \S+:(\d+)/))[1]);
  for (const pipeline of [1, 16]) {
    const ratios: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const a = await benchmark(sipdirPort, pipeline);
      const b = await benchmark(redis.port, pipeline);
      ratios.push(a.rps / b.rps);
      console.log(
        `P=${pipeline} round ${round}: sipdir ${Math.round(a.rps)} GET/s (p50 ${a.p50} ms), ` +
          `redis ${Math.round(b.rps)} GET/s (p50 ${b.p50} ms), ratio ${(a.rps / b.rps).toFixed(2)}`,
      );
    }
    const sorted = [...ratios].sort((x, y) => x - y);
    console.log(`P=${pipeline}: median ratio ${sorted[Math.floor(sorted.length / 2)].toFixed(2)}`);
  }
} finally {
  sipdir.kill("SIGTERM");
  await sipdir.exit();
  await redis.stop();
  await Deno.remove(dir, { recursive: true });
}
