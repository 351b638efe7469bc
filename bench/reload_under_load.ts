/**
 * Lookups during a reload: the same load twice in one run, once without and
 * once with a SIGHUP partway through, against one sipdir process.
 *
 * ```sh
 * deno run -A bench/reload_under_load.ts [--entries 1000000] [--connections 32]
 *   [--pipeline 1] [--duration 6] [--reload-at 2] [--settle 3] [--no-huge-pages]
 *   [--work /tmp/sipdir-reload-bench]
 * ```
 *
 * The client is the repository's C load generator, `bench/loadgen.c` (built
 * into the work directory, as `bench/compare.ts` does), on the line protocol:
 * each window measures `--duration` seconds after a 1 s warm-up, and the
 * SIGHUP comes `--reload-at` seconds into the measured part. Prints one line
 * per window and the ratios: ops with reload ÷ without, p99.9 with reload ÷
 * without.
 *
 * The first window starts `--settle` seconds after sipdir listens. Without
 * that pause, the window without a reload, right after start-up, served
 * fewer lookups than the one with a reload, in three runs out of three on
 * huge pages. Windows of 1.5 s from start-up on showed no slowdown that
 * lasted, only this VM's ups and downs: the pause keeps start-up out of the
 * comparison either way.
 *
 * sipdir runs in the launchers' environment (its data on huge pages) unless
 * `--no-huge-pages` leaves `GLIBC_TUNABLES` empty, to compare.
 *
 * Needs `cc`. The data is generated into the work directory and removed at
 * the end (1M registrations are about 700 MB); the compiled client stays.
 *
 * @module
 */

import { writeRegistrations } from "../testing/gen_regs.ts";
import { SipdirProcess } from "../testing/sipdir_process.ts";
import type { Cleanups, LoadgenResult } from "./harness.ts";
import {
  CommandLine,
  integerFlag,
  loadgenSetup,
  requireTools,
  runLoadgen,
  runMain,
  secondsFlag,
  sleep,
  switchFlag,
  textFlag,
  WARMUP_SECONDS,
} from "./harness.ts";

const COMMAND_LINE = new CommandLine("bench/reload_under_load.ts", {
  entries: integerFlag("1000000", "registrations to generate"),
  connections: integerFlag("32", "the load generator's connections"),
  pipeline: integerFlag("1", "requests in flight per connection"),
  duration: secondsFlag(
    "6",
    `measured seconds per window, after a ${WARMUP_SECONDS} s warm-up`,
  ),
  reloadAt: secondsFlag("2", "when the SIGHUP comes, into the measured part", { orZero: true }),
  settle: secondsFlag("3", "pause between sipdir listening and the first window", {
    orZero: true,
  }),
  noHugePages: switchFlag("run sipdir with GLIBC_TUNABLES empty"),
  work: textFlag("/tmp/sipdir-reload-bench", "the client, and the data while it runs", {
    placeholder: "DIR",
  }),
});

/** A window's throughput and latency, as the load generator prints them. */
function format(w: LoadgenResult): string {
  return `ops_per_s=${Math.round(w.opsPerS)} p50_us=${w.p50Us} p99_us=${w.p99Us} ` +
    `p999_us=${w.p999Us}`;
}

async function main(cleanups: Cleanups): Promise<number> {
  const options = COMMAND_LINE.parse(Deno.args);
  await requireTools("reload_under_load", ["cc"]);
  cleanups.stopOnSignals("\ninterrupted: stopping sipdir");
  await Deno.mkdir(options.work, { recursive: true });
  const regs = `${options.work}/regs.jsonl`;
  const keys = `${options.work}/keys.txt`;
  // Added first, so run last: once sipdir is stopped.
  cleanups.add(async () => {
    for (const path of [regs, keys]) await Deno.remove(path).catch(() => {});
  });
  await writeRegistrations({ count: options.entries, out: regs, keys, duplicates: 0 });
  const setup = await loadgenSetup(options.work, keys, options.duration);

  const sipdir = await SipdirProcess.start(["-d", regs, "-p", "0", "--no-inspector-guard"], {
    env: options.noHugePages ? { GLIBC_TUNABLES: "" } : {},
  });
  cleanups.add(async () => {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
  });
  const port = await sipdir.port(120_000);

  const measure = async (): Promise<LoadgenResult> => {
    const result = await runLoadgen({
      ...setup,
      port,
      mode: "line",
      connections: options.connections,
      inFlight: options.pipeline,
      cpuPid: sipdir.child.pid,
    }, cleanups);
    if (result.errors > 0) throw new Error(`${result.errors} wrong answers`);
    return result;
  };

  await sleep(options.settle * 1000);
  const plain = await measure();
  console.log(`no reload:             ${format(plain)}`);

  // The load generator warms up before it measures.
  const from = sipdir.stderr.length;
  const timer = setTimeout(
    () => sipdir.kill("SIGHUP"),
    (WARMUP_SECONDS + options.reloadAt) * 1000,
  );
  try {
    const [during, reloaded] = await Promise.all([
      measure(),
      sipdir.waitFor(/reloaded .* in (\d+) ms/, 120_000, from),
    ]);
    console.log(
      `SIGHUP at ${options.reloadAt} s (${(Number(reloaded[1]) / 1000).toFixed(1)} s): ` +
        format(during),
    );
    console.log(
      `ops_ratio=${(during.opsPerS / plain.opsPerS).toFixed(2)} p999_ratio=${
        (during.p999Us / plain.p999Us).toFixed(2)
      } (with reload ÷ without)`,
    );
  } finally {
    clearTimeout(timer);
  }
  await cleanups.runAll();
  return 0;
}

if (import.meta.main) await runMain("reload_under_load", main);
