/**
 * Lookups during a reload: the same load twice in one run, once without and
 * once with a SIGHUP partway through, against one sipdir process.
 *
 * ```sh
 * deno run -A bench/reload_under_load.ts [--entries 1000000] [--connections 32]
 *   [--pipeline 1] [--duration 6] [--reload-at 2] [--settle 3] [--lineload PATH]
 *   [--no-huge-pages]
 * ```
 *
 * The client is `bench/load_client.ts` unless `--lineload` names the C load
 * generator (`-k -p -m -c -P -d` options, a summary line with `ops_per_s=`,
 * `p50_us=`, `p99_us=`, `p999_us=`). Prints one line per window and the
 * ratios: ops with reload ÷ without, p99.9 with reload ÷ without.
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
 * @module
 */

import { parseArgs } from "node:util";
import { writeRegistrations } from "../testing/gen_regs.ts";
import { SipdirProcess } from "../testing/sipdir_process.ts";
import { runLoad } from "./load_client.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    entries: { type: "string", default: "1000000" },
    connections: { type: "string", default: "32" },
    pipeline: { type: "string", default: "1" },
    duration: { type: "string", default: "6" },
    "reload-at": { type: "string", default: "2" },
    settle: { type: "string", default: "3" },
    lineload: { type: "string" },
    "no-huge-pages": { type: "boolean", default: false },
  },
});
const entries = Number(values.entries);
const connections = Number(values.connections);
const pipeline = Number(values.pipeline);
const duration = Number(values.duration);
const reloadAt = Number(values["reload-at"]);
const settle = Number(values.settle);

interface Window {
  ops: number;
  p50: number;
  p99: number;
  p999: number;
}

const dir = await Deno.makeTempDir({ prefix: "sipdir-reload-bench-" });
const regs = `${dir}/regs`;
const keysPath = `${dir}/keys`;
await writeRegistrations({ count: entries, out: regs, keys: keysPath, duplicates: 0 });
const keys = (await Deno.readTextFile(keysPath)).split("\n").filter((k) => k !== "");
const sipdir = await SipdirProcess.start(["-d", regs, "-p", "0", "--no-inspector-guard"], {
  env: values["no-huge-pages"] ? { GLIBC_TUNABLES: "" } : {},
});
try {
  const port = await sipdir.port(120_000);

  const measure = async (): Promise<Window> => {
    if (values.lineload) {
      const args = ["-k", keysPath, "-p", String(port), "-m", "line", "-c", String(connections)];
      args.push("-P", String(pipeline), "-d", String(duration));
      const output = await new Deno.Command(values.lineload, { args }).output();
      const text = new TextDecoder().decode(output.stdout);
      const field = (name: string) => Number(text.match(new RegExp(`${name}=(\\d+)`))?.[1] ?? 0);
      if (field("errors") > 0) throw new Error(`wrong answers: ${text}`);
      return {
        ops: field("ops_per_s"),
        p50: field("p50_us"),
        p99: field("p99_us"),
        p999: field("p999_us"),
      };
    }
    const r = await runLoad({ port, keys, connections, pipeline, duration });
    if (r.errors > 0) throw new Error(`${r.errors} wrong answers`);
    return { ops: r.opsPerSecond, p50: r.p50, p99: r.p99, p999: r.p999 };
  };
  const format = (w: Window) =>
    `ops_per_s=${Math.round(w.ops)} p50_us=${w.p50} p99_us=${w.p99} p999_us=${w.p999}`;

  await new Promise((resolve) => setTimeout(resolve, settle * 1000));
  const plain = await measure();
  console.log(`no reload:             ${format(plain)}`);

  // Both clients warm up for 0.5 s before measuring.
  const from = sipdir.stderr.length;
  const timer = setTimeout(() => sipdir.kill("SIGHUP"), (0.5 + reloadAt) * 1000);
  const reloading = measure();
  const reloaded = await sipdir.waitFor(/reloaded .* in (\d+) ms/, 120_000, from);
  const during = await reloading;
  clearTimeout(timer);
  console.log(
    `SIGHUP at ${reloadAt} s (${(Number(reloaded[1]) / 1000).toFixed(1)} s): ${format(during)}`,
  );
  console.log(
    `ops_ratio=${(during.ops / plain.ops).toFixed(2)} p999_ratio=${
      (during.p999 / plain.p999).toFixed(2)
    } (with reload ÷ without)`,
  );
} finally {
  sipdir.kill("SIGTERM");
  await sipdir.exit();
  await Deno.remove(dir, { recursive: true });
}
