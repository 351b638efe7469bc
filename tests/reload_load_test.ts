/**
 * Reloads of a large dump, as a process: memory after and during reloads
 * (one copy of the data in steady state, two at most while loading), and
 * lookups answered while the new data loads, and the data on huge pages.
 */

import { assertAtMost, assertEquals, assertOk } from "./assert.ts";
import { writeRegistrations } from "../testing/gen_regs.ts";
import { LineClient } from "../testing/line_client.ts";
import { SipdirProcess } from "../testing/sipdir_process.ts";

const MB = 1024 * 1024;
/** About 140 MB of dump: three 64 MB storage chunks, a reload of several hundred ms. */
const ENTRIES = 200_000;

/** The dump and its AORs, generated once for this file. */
const dump = (async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-reload-" });
  const path = `${dir}/regs`;
  const keys = `${dir}/keys`;
  await writeRegistrations({ count: ENTRIES, out: path, keys, duplicates: 0, seed: 13 });
  const aors = (await Deno.readTextFile(keys)).split("\n").filter((k) => k !== "");
  return { dir, path, aors };
})();

/** Does `answer` look like the registration of `aor`? (Answers are checked whole elsewhere.) */
function isAnswerOf(answer: string, aor: string): boolean {
  return answer.startsWith(`{"addressOfRecord":"${aor}"`) && answer.endsWith("}");
}

/** Sends SIGHUP and waits for the reload's log line; returns its duration in ms. */
async function reload(sipdir: SipdirProcess, during?: () => void): Promise<number> {
  const from = sipdir.stderr.length;
  sipdir.kill("SIGHUP");
  const done = sipdir.waitFor(/reloaded \S+: \d+ entries .* in (\d+) ms/, 60_000, from);
  if (during) {
    let finished = false;
    done.finally(() => finished = true);
    while (!finished) {
      during();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }
  return Number((await done)[1]);
}

Deno.test("reload memory: one copy after five reloads, at most two during them, with clients reading", async () => {
  const { path, aors } = await dump;
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--timeout", "600"]);
  const clients: LineClient[] = [];
  let reading = true;
  try {
    const port = await sipdir.port(60_000);
    // Idle clients that each got one answer written straight from the
    // first data's storage: once written, it must not keep that data alive.
    const idle = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const client = await LineClient.connect(port);
        const aor = aors[Math.floor((i * aors.length) / 12)];
        await client.send(`${aor}\n`);
        assertOk(isAnswerOf(await client.line(), aor), aor);
        clients.push(client);
        return { client, aor };
      }),
    );
    const start = await sipdir.rss();

    // Pipelining clients during every reload; each answer is checked.
    let answered = 0;
    const busy = Array.from({ length: 4 }, async (_, c) => {
      const client = await LineClient.connect(port);
      clients.push(client);
      for (let round = 0; reading; round++) {
        const batch = Array.from(
          { length: 200 },
          (_, i) =>
            i % 10 === 0 ? `unknown-${c}-${i}` : aors[(round * 200 + i * 7 + c) % aors.length],
        );
        await client.send(batch.join("\n") + "\n");
        const answers = await client.lines(batch.length);
        for (let i = 0; i < batch.length; i++) {
          if (i % 10 === 0) assertEquals(answers[i], "");
          else assertOk(isAnswerOf(answers[i], batch[i]), batch[i]);
        }
        answered += batch.length;
      }
    });

    let peak = start;
    const sample = () => sipdir.rss().then((rss) => peak = Math.max(peak, rss)).catch(() => {});
    for (let i = 0; i < 5; i++) await reload(sipdir, sample);
    reading = false;
    await Promise.all(busy);
    assertOk(answered > 0, "no lookups during the reloads");

    // Freed storage goes back to the system on a background thread, soon after the swap.
    let after = await sipdir.rss();
    for (let i = 0; i < 100 && after > start * 1.15; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      after = await sipdir.rss();
    }
    const summary = `RSS start ${Math.round(start / MB)} MB, after 5 reloads ${
      Math.round(after / MB)
    } MB, peak ${Math.round(peak / MB)} MB`;
    console.log(summary);
    assertAtMost(after, start * 1.15, `steady state (${summary})`);
    assertAtMost(peak, start * 2.1, `peak during reloads (${summary})`);

    // The idle clients are served from the new data.
    for (const { client, aor } of idle) {
      await client.send(`${aor}\n`);
      assertOk(isAnswerOf(await client.line(), aor), aor);
    }
  } finally {
    reading = false;
    for (const client of clients) client.close();
    sipdir.kill("SIGTERM");
    await sipdir.exit();
  }
});

Deno.test("reload: lookups one at a time never wait long while a large dump reloads", async () => {
  const { path, aors } = await dump;
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"]);
  const client = await LineClient.connect(await sipdir.port(60_000));
  try {
    let running = true;
    let longest = 0;
    let lookups = 0;
    const lookup = async () => {
      for (let i = 0; running; i++) {
        const aor = aors[(i * 7919) % aors.length];
        const sent = performance.now();
        await client.send(`${aor}\n`);
        assertOk(isAnswerOf(await client.line(), aor), aor);
        longest = Math.max(longest, performance.now() - sent);
        lookups++;
      }
    };
    // Warm up, then measure only while the reload runs.
    running = true;
    const warm = lookup();
    await new Promise((resolve) => setTimeout(resolve, 300));
    running = false;
    await warm;
    longest = 0;
    lookups = 0;
    running = true;
    const measuring = lookup();
    const ms = await reload(sipdir);
    running = false;
    await measuring;
    console.log(`reload ${ms} ms: ${lookups} lookups, the longest waited ${longest.toFixed(1)} ms`);
    // Reloads run at the lowest CPU priority; the thread answering lookups does not.
    const nice = async (tid: string) =>
      Number(
        (await Deno.readTextFile(`/proc/${sipdir.child.pid}/task/${tid}/stat`)).split(") ")[1]
          .split(" ")[16],
      );
    const niceness: number[] = [];
    for await (const task of Deno.readDir(`/proc/${sipdir.child.pid}/task`)) {
      niceness.push(await nice(task.name));
    }
    assertEquals(await nice(String(sipdir.child.pid)), 0);
    assertOk(niceness.includes(19), `thread nice values: ${niceness}`);
    // Loading on the serving thread, a lookup waited 40% of the reload (measured).
    assertAtMost(longest, ms / 10, `longest wait during a ${ms} ms reload`);
    assertOk(lookups >= 50, `only ${lookups} lookups during the reload`);
  } finally {
    client.close();
    sipdir.kill("SIGTERM");
    await sipdir.exit();
  }
});

Deno.test("huge pages: asked for as launched (on them where THP is madvise); without, a warning", async () => {
  const { path } = await dump;
  // What the kernel does with glibc's request: sipdir itself may not read /sys.
  const thp = (await Deno.readTextFile("/sys/kernel/mm/transparent_hugepage/enabled")
    .catch(() => "")).match(/\[(\w+)\]/)?.[1] ?? "unknown";
  const run = async (env: Record<string, string>) => {
    const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"], { env });
    try {
      await sipdir.port(60_000);
      const rollup = await Deno.readTextFile(`/proc/${sipdir.child.pid}/smaps_rollup`);
      const huge = Number(rollup.match(/^AnonHugePages:\s+(\d+) kB/m)![1]) * 1024;
      const loaded = sipdir.stderr.match(/loaded \d+ entries .*: (\d+) bytes/)!;
      return { huge, data: Number(loaded[1]), stderr: sipdir.stderr };
    } finally {
      sipdir.kill("SIGTERM");
      await sipdir.exit();
    }
  };
  const launched = await run({});
  const without = await run({ GLIBC_TUNABLES: "" });
  const MB = (n: number) => `${Math.round(n / 1024 / 1024)} MB`;
  console.log(
    `THP mode ${thp}, ${MB(launched.data)} of data: ${MB(launched.huge)} on huge pages as ` +
      `launched, ${MB(without.huge)} without the tunable`,
  );
  assertOk(launched.data >= 64 * 1024 * 1024, "the dump is large enough to be advised on");
  assertOk(!/GLIBC_TUNABLES/.test(launched.stderr), launched.stderr);
  assertOk(
    /WARNING .*GLIBC_TUNABLES does not ask for huge pages: .* \d+ MB of data .*start sipdir with GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1/
      .test(without.stderr),
    without.stderr,
  );
  if (thp === "madvise") {
    assertOk(launched.huge >= launched.data / 2, "most of the data on huge pages");
    assertAtMost(without.huge, without.data / 2, "huge pages without the tunable");
  } else {
    // "always" gives huge pages without asking, "never" none at all.
    console.log(`THP mode ${thp}: where the data lands does not depend on the tunable here`);
  }
});

Deno.test({
  name: "reload: remove the generated dump",
  fn: async () => {
    await Deno.remove((await dump).dir, { recursive: true });
  },
});
