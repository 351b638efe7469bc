/**
 * Fairness at hundreds and a thousand connections, timed by nothing
 * absolute: 512, then 1024 connections each keep one request in flight
 * against a sipdir process, and the connection served least must get at
 * least half as many answers as the median one.
 *
 * The load comes from `fair_client.c` beside this file (epoll, one thread), compiled
 * here: a client in this runtime would be the bottleneck, and the server
 * would never have hundreds of sockets ready at once, which is when an
 * unfair server shows (measured on the transport sipdir had before: the
 * least served of 512 connections got 11 answers, the median 414).
 */

import { assertOk } from "../assert.ts";
import { Dataset, SipdirProcess, tempFile } from "../helpers.ts";

/** Compiles the fair client into a temporary directory; returns its path. */
async function compileClient(dir: string): Promise<string> {
  const source = new URL("./fair_client.c", import.meta.url).pathname;
  const binary = `${dir}/fair_client`;
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("cc", { args: ["-O2", "-o", binary, source] }).output();
  } catch (error) {
    throw new Error(`needs a C compiler as cc (Debian: gcc): ${error}`);
  }
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  return binary;
}

for (const connections of [512, 1024]) {
  Deno.test(`fairness: ${connections} connections, one request in flight each, served evenly`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sipdir-fair-" });
    const data = new Dataset(10_000, 15);
    const path = await tempFile(data.text);
    const keys = `${dir}/keys`;
    await Deno.writeTextFile(keys, data.aors.join("\n") + "\n");
    const client = await compileClient(dir);
    const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"], { shell: "ulimit -n 4096" });
    try {
      const port = await sipdir.port();
      const output = await new Deno.Command("sh", {
        args: [
          "-c",
          `ulimit -n 4096; exec "$@"`,
          "sh",
          client,
          String(port),
          String(connections),
          "3",
          keys,
        ],
      }).output();
      const text = new TextDecoder().decode(output.stdout);
      const stderr = new TextDecoder().decode(output.stderr);
      assertOk(output.success, `fair_client failed: ${stderr}`);
      const field = (name: string) => Number(text.match(new RegExp(`${name}=(\\d+)`))![1]);
      console.log(`  ${text.trim()}`);
      assertOk(field("answers") > 10_000, text);
      assertOk(
        field("min") >= field("median") / 2,
        `the least served connection got ${field("min")} answers, the median ${field("median")}`,
      );
      assertOk((await sipdir.counters()).lookups >= field("answers"));
    } finally {
      sipdir.kill("SIGTERM");
      await sipdir.exit();
      await Deno.remove(path);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
