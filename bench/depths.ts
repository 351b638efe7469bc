/**
 * sipdir against Redis by pipeline depth, same data, same client, alternating
 * rounds in one run; writes the results as JSON and as the README's chart.
 *
 * ```sh
 * deno run -A bench/depths.ts [--entries 100000] [--depths 1,2,4,8,16,32,64]
 *   [--duration 3] [--rounds 2] [--lineload PATH] [--out bench/depths]
 * ```
 *
 * Needs `redis-server` (Debian: `apt-get install redis-server`). The client
 * is `bench/load_client.ts` unless `--lineload` names a compiled C load
 * generator speaking the same `-k -p -m -c -P -d` options (a TypeScript
 * client tops out well below either server at high depths, so the chart in
 * the README was made with the C one).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { renderDepthChart } from "./chart.ts";
import { writeRegistrations } from "../testing/gen_regs.ts";
import { runLoad } from "./load_client.ts";
import { loadRedis, median, startRedis } from "./redis_peer.ts";
import { SipdirProcess } from "../testing/sipdir_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    entries: { type: "string", default: "100000" },
    depths: { type: "string", default: "1,2,4,8,16,32,64" },
    duration: { type: "string", default: "3" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "32" },
    lineload: { type: "string" },
    out: { type: "string", default: "bench/depths" },
  },
});
const entries = Number(values.entries);
const depths = values.depths!.split(",").map(Number);
const duration = Number(values.duration);
const rounds = Number(values.rounds);
const connections = Number(values.connections);

const dir = await Deno.makeTempDir({ prefix: "sipdir-depths-" });
const regs = `${dir}/regs`;
const keysPath = `${dir}/keys`;
await writeRegistrations({ count: entries, out: regs, keys: keysPath, duplicates: 0 });
const keys = (await Deno.readTextFile(keysPath)).split("\n").filter((k) => k !== "");
const stops: (() => Promise<unknown>)[] = [];

try {
  const redisPeer = await startRedis();
  stops.push(() => redisPeer.stop());
  const redisPort = redisPeer.port;
  await loadRedis(redisPort, regs);

  // Started as the compiled binary would run, with its permissions.
  const sipdir = await SipdirProcess.start(["-d", regs, "-p", "0"]);
  stops.push(async () => {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
  });
  const sipdirPort = await sipdir.port();

  const measure = async (port: number, protocol: "line" | "redis", depth: number) => {
    if (values.lineload) {
      const output = await new Deno.Command(values.lineload, {
        args: [
          "-k",
          keysPath,
          "-p",
          String(port),
          "-m",
          protocol,
          "-c",
          String(connections),
          "-P",
          String(depth),
          "-d",
          String(duration),
        ],
      }).output();
      const text = new TextDecoder().decode(output.stdout);
      return Number(text.match(/ops_per_s=(\d+)/)?.[1] ?? 0);
    }
    const result = await runLoad({ port, protocol, keys, connections, pipeline: depth, duration });
    if (result.errors > 0) {
      throw new Error(`${result.errors} wrong answers from ${protocol} server`);
    }
    return result.opsPerSecond;
  };

  const results = [];
  for (const depth of depths) {
    const sipdir: number[] = [];
    const redis: number[] = [];
    for (let round = 0; round < rounds; round++) {
      sipdir.push(await measure(sipdirPort, "line", depth));
      redis.push(await measure(redisPort, "redis", depth));
    }
    const row = { depth, sipdir: median(sipdir), redis: median(redis) };
    console.log(
      `depth ${depth}: sipdir ${row.sipdir} ops/s, redis ${row.redis} ops/s, ratio ${
        (row.sipdir / row.redis).toFixed(2)
      }`,
    );
    results.push(row);
  }

  const cpu = (await Deno.readTextFile("/proc/cpuinfo")).match(/model name\s*:\s*(.*)/)?.[1] ??
    "unknown CPU";
  const client = values.lineload ? "C lineload" : "load_client.ts";
  const caption =
    `${new Date().toISOString().slice(0, 10)}, ${navigator.hardwareConcurrency} × ${cpu}, ` +
    `${entries} registrations, ${connections} connections, ${client}, median of ${rounds}`;
  await Deno.writeTextFile(
    `${values.out}.json`,
    JSON.stringify({ caption, results }, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${values.out}.svg`, renderDepthChart({ caption, results }));
  console.log(`wrote ${values.out}.json and ${values.out}.svg`);
  console.log("\n| depth | sipdir ops/s | Redis ops/s | ratio |\n| ---: | ---: | ---: | ---: |");
  for (const r of results) {
    console.log(`| ${r.depth} | ${r.sipdir} | ${r.redis} | ${(r.sipdir / r.redis).toFixed(2)} |`);
  }
} finally {
  for (const stop of stops) await stop();
  await Deno.remove(dir, { recursive: true });
}
