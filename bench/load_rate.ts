/**
 * Load rate of dumps, plain and gzip, on this thread and through the
 * worker: each load in a fresh process, the configurations interleaved
 * round by round (a shared machine drifts), medians reported.
 *
 * ```sh
 * deno run -A bench/load_rate.ts /var/tmp/regs1m.jsonl /var/tmp/regs1m.jsonl.gz --runs 5
 * # and the plain path of another tree (e.g. the parent commit's worktree):
 * deno run -A bench/load_rate.ts /var/tmp/regs1m.jsonl --before /tmp/sipdir-before
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname;
const MODES = ["thread", "worker", "background"] as const;
type Mode = typeof MODES[number];

/**
 * CPU milliseconds this process used so far, all threads (utime + stime of
 * /proc/self/stat, in clock ticks of 10 ms): a machine busy with other work
 * stretches the wall time of a load far more than its CPU time.
 */
function cpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** One load in this process: prints `{ ms, cpu, bytes, fileBytes }` as JSON. */
async function one(root: string, mode: Mode, path: string): Promise<void> {
  const { loadDirectory } = await import(`file://${root}/lib/loading/load.ts`);
  const { WorkerLoader } = await import(`file://${root}/lib/loading/worker_load.ts`);
  let report: { bytes: number; fileBytes?: number };
  let ms: number;
  let cpu = 0;
  if (mode === "thread") {
    cpu = cpuMs();
    const started = performance.now();
    ({ report } = await loadDirectory({ path }));
    ms = performance.now() - started;
    cpu = cpuMs() - cpu;
  } else {
    // The server's worker outlives a load: started (and warmed) beforehand.
    const loader = new WorkerLoader(new URL(`file://${root}/lib/loading/load_worker.ts`));
    try {
      await loader.load({ path: `${ROOT}/data/regs` });
      cpu = cpuMs();
      const started = performance.now();
      ({ report } = await loader.load({ path, background: mode === "background" }));
      ms = performance.now() - started;
      cpu = cpuMs() - cpu;
    } finally {
      loader.close();
    }
  }
  console.log(JSON.stringify({ ms, cpu, bytes: report.bytes, fileBytes: report.fileBytes }));
}

async function spawn(root: string, mode: Mode, path: string) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--one", root, mode, path],
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`${root} ${mode} ${path} failed`);
  return JSON.parse(new TextDecoder().decode(output.stdout)) as {
    ms: number;
    cpu: number;
    bytes: number;
    fileBytes?: number;
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (import.meta.main) {
  const args = parseArgs({
    args: Deno.args,
    options: {
      one: { type: "boolean" },
      runs: { type: "string", default: "5" },
      before: { type: "string" },
      modes: { type: "string", default: MODES.join(",") },
    },
    allowPositionals: true,
  });
  if (args.values.one) {
    const [root, mode, path] = args.positionals;
    await one(root, mode as Mode, path);
  } else {
    const modes = args.values.modes.split(",") as Mode[];
    const configs: { label: string; root: string; mode: Mode; path: string }[] = [];
    for (const path of args.positionals) {
      // The tree before gzip support compares on plain files only.
      const head = new Uint8Array(2);
      using file = await Deno.open(path);
      await file.read(head);
      const plain = !(head[0] === 0x1f && head[1] === 0x8b);
      for (const mode of modes) {
        configs.push({ label: `${path} ${mode}`, root: ROOT, mode, path });
        if (args.values.before && plain) {
          configs.push({ label: `${path} ${mode} before`, root: args.values.before, mode, path });
        }
      }
    }
    const times = new Map(configs.map((c) => [c.label, [] as number[]]));
    const cpus = new Map(configs.map((c) => [c.label, [] as number[]]));
    const sizes = new Map<string, { bytes: number; fileBytes?: number }>();
    for (let run = 0; run < Number(args.values.runs); run++) {
      for (const c of configs) {
        const r = await spawn(c.root, c.mode, c.path);
        times.get(c.label)!.push(r.ms);
        cpus.get(c.label)!.push(r.cpu);
        sizes.set(c.label, r);
        console.error(`run ${run + 1}: ${c.label}: ${Math.round(r.ms)} ms, cpu ${r.cpu} ms`);
      }
    }
    console.log(
      "| configuration | median wall (ms) | MB/s (uncompressed) | median CPU (ms) | runs (wall ms) |",
    );
    console.log("| --- | ---: | ---: | ---: | --- |");
    for (const c of configs) {
      const ms = median(times.get(c.label)!);
      const { bytes } = sizes.get(c.label)!;
      const runs = times.get(c.label)!.map(Math.round).join(", ");
      console.log(
        `| ${c.label} | ${Math.round(ms)} | ${Math.round(bytes / 1e6 / (ms / 1e3))} | ` +
          `${Math.round(median(cpus.get(c.label)!))} | ${runs} |`,
      );
    }
    // Ratios within a round, of loads run one after the other, drift less
    // than the times themselves on a shared machine.
    console.log("\n| ratio | median | per round |");
    console.log("| --- | ---: | --- |");
    for (const [i, c] of configs.entries()) {
      for (const [j, d] of configs.entries()) {
        const before = d.label === `${c.label} before`;
        const plainVsGzip = c.mode === d.mode && c.root === d.root && c.path !== d.path && i > j;
        if (!before && !plainVsGzip) continue;
        for (const [what, of] of [["wall", times], ["CPU", cpus]] as const) {
          const ratios = of.get(c.label)!.map((t, k) => t / of.get(d.label)![k]);
          const list = ratios.map((r) => r.toFixed(2)).join(", ");
          console.log(
            `| ${what}: ${c.label} / ${d.label} | ${median(ratios).toFixed(2)} | ${list} |`,
          );
        }
      }
    }
  }
}
