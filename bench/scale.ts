/**
 * Scale check, not part of CI: generates a dump of 20 million small
 * registrations (past a JS `Map`'s 2^24 entries and any single buffer's
 * comfort), serves it with sipdir, and checks answers over TCP.
 *
 * ```sh
 * deno run -A --v8-flags=--max-old-space-size=8000 bench/scale.ts [--count 20000000] [--dir /tmp/sipdir-scale] [--samples 200000]
 * ```
 *
 * Needs about 2.5 GB of disk and 4 GB of memory for 20M. Prints the load
 * time, the RSS and the answers checked; exits 1 on any wrong answer.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeRegistrations } from "../testing/gen_regs.ts";
import { SipdirProcess } from "../testing/sipdir_process.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "20000000" },
    dir: { type: "string", default: "/tmp/sipdir-scale" },
    samples: { type: "string", default: "200000" },
  },
});
const count = Number(values.count);
const samples = Number(values.samples);
await Deno.mkdir(values.dir!, { recursive: true });
const regs = `${values.dir}/regs-${count}`;
const keysPath = `${values.dir}/keys-${count}`;

try {
  await Deno.stat(regs);
  await Deno.stat(keysPath);
  console.log(`reusing ${regs}`);
} catch {
  console.log(`generating ${count} small registrations into ${regs} …`);
  const t = performance.now();
  const { lines, duplicates } = await writeRegistrations({
    count,
    out: regs,
    keys: keysPath,
    small: true,
    duplicates: 0.001,
  });
  console.log(
    `  ${lines} lines, ${duplicates} duplicates, ${((performance.now() - t) / 1000).toFixed(0)} s`,
  );
}
const size = (await Deno.stat(regs)).size;
const { total: distinct, picks } = await sampleKeys(keysPath, samples);
console.log(`${(size / 1e9).toFixed(2)} GB, ${distinct} distinct AORs`);

const started = performance.now();
// Started as the compiled binary would run, with its permissions.
const sipdir = await SipdirProcess.start(["--data", regs, "--port", "0"]);
const port = await sipdir.port(600_000);
const loadSeconds = (performance.now() - started) / 1000;
const rss = await sipdir.rss();
const log = sipdir.stderr;
console.log(log.trim());
console.log(`start to listening: ${loadSeconds.toFixed(1)} s, RSS ${(rss / 1e9).toFixed(2)} GB`);
const entries = Number(log.match(/loaded (\d+) entries/)![1]);
let failures = entries === distinct ? 0 : 1;
if (failures) console.log(`expected ${distinct} entries, loaded ${entries}`);

// Check a spread of AORs, the first and last included, pipelined 1000 at a time.
const conn = await Deno.connect({ hostname: "127.0.0.1", port });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let pending = "";
const buf = new Uint8Array(1 << 20);
for (let b = 0; b < picks.length; b += 1000) {
  const batch = picks.slice(b, b + 1000);
  batch.push(`missing-${b}`);
  await conn.write(encoder.encode(batch.join("\n") + "\n"));
  const answers: string[] = [];
  while (answers.length < batch.length) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("closed");
    pending += decoder.decode(buf.subarray(0, n));
    const parts = pending.split("\n");
    pending = parts.pop()!;
    answers.push(...parts);
  }
  batch.forEach((aor, i) => {
    const ok = aor.startsWith("missing-")
      ? answers[i] === ""
      : answers[i] !== "" && JSON.parse(answers[i]).addressOfRecord === aor;
    if (!ok && failures++ < 5) console.log(`wrong answer for ${aor}: ${answers[i].slice(0, 100)}`);
  });
}
conn.close();
console.log(
  `checked ${picks.length} AORs and ${Math.ceil(picks.length / 1000)} misses: ${failures} failures`,
);
sipdir.kill("SIGTERM");
await sipdir.exit();
Deno.exit(failures === 0 ? 0 : 1);

/**
 * Counts the AORs in the key file and picks a uniform sample of them, plus
 * the first and the last, without holding the file as one string (it can be
 * longer than a JS string may be).
 */
async function sampleKeys(path: string, size: number): Promise<{ total: number; picks: string[] }> {
  const decoder = new TextDecoder();
  const sample: string[] = [];
  let first = "";
  let last = "";
  let total = 0;
  let rest = "";
  for await (const chunk of (await Deno.open(path)).readable) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop()!;
    for (const line of lines) {
      if (line === "") continue;
      if (total === 0) first = line;
      last = line;
      total++;
      // Reservoir sampling.
      if (sample.length < size) sample.push(line);
      else {
        const j = Math.floor(Math.random() * total);
        if (j < size) sample[j] = line;
      }
    }
  }
  return { total, picks: [first, last, ...sample] };
}
