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
 * Both servers are started as `bench/compare.ts` starts them (`bench/harness.ts`): sipdir as the
 * compiled binary runs, Redis without persistence, loaded with `SET aor <the dump line>`. Each
 * round runs `redis-benchmark` against both, the order alternating from round to round.
 *
 * Needs `redis-server` and `redis-benchmark` (Debian: `redis-server`,
 * `redis-tools`). Prints one line per round and, per pipeline depth, the
 * median of the rounds' ratios, sipdir ÷ Redis (above 1 is better for sipdir).
 *
 * @module
 */

import type { Cleanups } from "./harness.ts";
import {
  CommandLine,
  integerFlag,
  loadRedis,
  median,
  requireTools,
  run,
  runMain,
  startRedis,
  startSipdir,
  writeAll,
} from "./harness.ts";

const COMMAND_LINE = new CommandLine("bench/redis_benchmark.ts", {
  entries: integerFlag("100000", "registrations, keys key:000000000000 on"),
  requests: integerFlag("200000", "requests per redis-benchmark run"),
  connections: integerFlag("32", "redis-benchmark's clients"),
  rounds: integerFlag("3", "rounds; each runs both servers at pipeline 1 and 16"),
});

/** The pipeline depths measured. */
const PIPELINES: readonly number[] = [1, 16];

/** What the command line asks for. */
type Options = ReturnType<typeof COMMAND_LINE.parse>;

/** One registration per `redis-benchmark -r` key, the size of real ones. */
async function writeDump(path: string, entries: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
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
      await writeAll(file, encoder.encode(text));
      text = "";
    }
  }
}

/** Runs redis-benchmark for GET against `port`: requests per second, and its p50 in ms. */
async function benchmark(
  options: Options,
  port: number,
  pipeline: number,
): Promise<{ rps: number; p50: number }> {
  const args = [
    ...["-h", "127.0.0.1", "-p", String(port), "-t", "get", "-n", String(options.requests)],
    ...["-r", String(options.entries), "-c", String(options.connections)],
    ...["-P", String(pipeline), "-q"],
  ];
  const { stdout, stderr } = await run("redis-benchmark", args);
  const match = stdout.match(/GET: ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?/);
  if (!match) throw new Error(`redis-benchmark said: ${stdout}${stderr}`);
  return { rps: Number(match[1]), p50: Number(match[2] ?? NaN) };
}

async function main(cleanups: Cleanups): Promise<number> {
  const options = COMMAND_LINE.parse(Deno.args);
  await requireTools("redis_benchmark", ["redis-server", "redis-benchmark"]);
  cleanups.stopOnSignals("\ninterrupted: stopping the servers");
  const dir = await Deno.makeTempDir({ prefix: "sipdir-redis-bench-" });
  // Added first, so run last: once the servers are stopped.
  cleanups.add(() => Deno.remove(dir, { recursive: true }));
  const regs = `${dir}/regs.jsonl`;
  await writeDump(regs, options.entries);
  const redis = await startRedis(`${dir}/redis.log`, cleanups);
  await loadRedis(redis.port, regs);
  const sipdir = await startSipdir(
    { data: regs, args: ["--redis-port", "0"], logFile: `${dir}/sipdir.log` },
    cleanups,
  );
  if (sipdir.loaded !== options.entries) {
    throw new Error(`sipdir loaded ${sipdir.loaded} entries, not ${options.entries}`);
  }
  const ports = { sipdir: sipdir.ports.redis!, redis: redis.port };
  for (const pipeline of PIPELINES) {
    const ratios: number[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      // Alternating which server goes first cancels drift within a round.
      const order = round % 2 === 1 ? ["sipdir", "redis"] as const : ["redis", "sipdir"] as const;
      const results = { sipdir: { rps: NaN, p50: NaN }, redis: { rps: NaN, p50: NaN } };
      for (const name of order) results[name] = await benchmark(options, ports[name], pipeline);
      const { sipdir: a, redis: b } = results;
      ratios.push(a.rps / b.rps);
      console.log(
        `P=${pipeline} round ${round}: sipdir ${Math.round(a.rps)} GET/s (p50 ${a.p50} ms), ` +
          `redis ${Math.round(b.rps)} GET/s (p50 ${b.p50} ms), ratio ${(a.rps / b.rps).toFixed(2)}`,
      );
    }
    console.log(`P=${pipeline}: median ratio ${median(ratios).toFixed(2)}`);
  }
  await cleanups.runAll();
  return 0;
}

if (import.meta.main) await runMain("redis_benchmark", main);
