/**
 * Clients that send and never read, by the hundred, against a sipdir
 * process: what they make it hold is bounded per client and in all
 * (`--max-client-memory`), the clients holding the most are closed past the
 * bound, and meanwhile everyone else is answered at once. The stalled
 * clients are `testing/stalled_clients.py`: their tiny receive windows make
 * the replies back up in sipdir, not in the kernel's socket buffers.
 */

import { assertAtMost, assertEquals, assertOk } from "../assert.ts";
import {
  Dataset,
  LineClient,
  SipdirProcess,
  tempFile,
  withSipdir as withSipdirOf,
} from "../helpers.ts";

const MiB = 1024 * 1024;
const DATA = new Dataset(2000, 31);
const STALLED_CLIENTS = new URL("../../testing/stalled_clients.py", import.meta.url).pathname;

/** `count` clients that each send `lookups` requests and never read; close() ends them. */
async function stalledClients(port: number, count: number, lookups: number) {
  const requests = await tempFile(
    Array.from({ length: lookups }, (_, i) => `${DATA.aors[i % 2000]}\n`).join(""),
  );
  const child = new Deno.Command("python3", {
    args: [STALLED_CLIENTS, String(port), String(count), requests],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  assertOk(value?.startsWith(`ready ${count}`), `stalled clients said ${value}`);
  return {
    async close() {
      await child.stdin.close();
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
      await child.status;
      await Deno.remove(requests);
    },
  };
}

/** Milliseconds for one lookup each, `n` times, on one connection; sorted. */
async function lookupTimes(port: number, n: number): Promise<number[]> {
  const client = await LineClient.connect(port);
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const aor = DATA.aors[(i * 7) % 2000];
      const started = performance.now();
      await client.send(`${aor}\n`);
      assertEquals(await client.line(), DATA.answer(aor));
      times.push(performance.now() - started);
    }
  } finally {
    client.close();
  }
  return times.sort((a, b) => a - b);
}

const withSipdir = (args: string[], fn: (sipdir: SipdirProcess, port: number) => Promise<void>) =>
  withSipdirOf(DATA.text, args, fn, { shell: "ulimit -n 4096" });

/** Waits until the server's writes stop progressing: the stalled clients' replies backed up. */
async function settled(sipdir: SipdirProcess): Promise<Record<string, number>> {
  let counters = await sipdir.counters();
  for (let i = 0; i < 100; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const next = await sipdir.counters();
    if (next.bytesOut === counters.bytesOut) return next;
    counters = next;
  }
  return counters;
}

Deno.test("client memory: 800 clients that do not read are bounded; others are answered at once", async () => {
  await withSipdir([], async (sipdir, port) => {
    const before = await sipdir.rss();
    const stalled = await stalledClients(port, 800, 5000);
    try {
      const counters = await settled(sipdir);
      assertOk(counters.open >= 800, `${counters.open} open`);
      const grown = (await sipdir.rss()) - before;
      console.log(`  resident memory grew by ${(grown / MiB).toFixed(0)} MiB for 800 such clients`);
      // Each holds at most its unread requests and one reply buffer (about
      // 130 KiB): far under the default bound of all clients' memory.
      assertAtMost(grown, 256 * MiB, "growth, bytes (the default --max-client-memory)");
      const times = await lookupTimes(port, 30);
      console.log(
        `  lookups beside them: median ${times[15].toFixed(1)} ms, max ${times[29].toFixed(1)} ms`,
      );
      assertAtMost(times[15], 100, "median lookup beside them, ms");
      assertEquals((await sipdir.counters()).evicted, 0);
    } finally {
      await stalled.close();
    }
  });
});

Deno.test("client memory: past --max-client-memory, the clients holding the most are closed", async () => {
  const args = ["--max-client-memory", String(4 * MiB), "--http-port", "0"];
  await withSipdir(args, async (sipdir, port) => {
    const http = Number((await sipdir.waitFor(/HTTP \(.*\) on \S+:(\d+)/))[1]);
    const stalled = await stalledClients(port, 200, 5000);
    try {
      // 200 clients that each hold up to about 130 KiB: some must go.
      const counters = await settled(sipdir);
      assertOk(counters.evicted > 0, "no client was closed");
      assertOk(counters.evicted < 200, "every client was closed");
      await sipdir.waitFor(/closed \d+ connection\(s\) holding the most memory/);
      const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
      const held = Number(metrics.match(/^sipdir_client_memory_bytes (\d+)$/m)![1]);
      console.log(`  ${counters.evicted} closed; the rest hold ${(held / MiB).toFixed(1)} MiB`);
      assertAtMost(held, 4 * MiB, "bytes all clients hold");
      const times = await lookupTimes(port, 30);
      console.log(
        `  lookups beside them: median ${times[15].toFixed(1)} ms, max ${times[29].toFixed(1)} ms`,
      );
      assertAtMost(times[15], 100, "median lookup beside them, ms");
    } finally {
      await stalled.close();
    }
  });
});
