/**
 * --watch, as a process: the data file replaced, rewritten, broken, removed
 * and recreated, with what is served after each.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { Dataset, LineClient, SipdirProcess } from "./helpers.ts";

const A = new Dataset(1000, 41);
const B = new Dataset(1000, 42);

/** Waits for the next reload's verdict after `from`; returns its log line. */
async function nextReload(sipdir: SipdirProcess, from: number): Promise<string> {
  return (await sipdir.waitFor(/^.*(reloaded|reload failed|reload refused).*$/m, 20_000, from))[0];
}

async function serving(port: number, data: Dataset): Promise<boolean> {
  const client = await LineClient.connect(port);
  try {
    await client.send(`${data.aors[7]}\n`);
    return (await client.line()) === data.answer(data.aors[7]);
  } finally {
    client.close();
  }
}

Deno.test("watch: rename-over, rewrite in place, a burst, a bad file, removal and return", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-watch-" });
  const path = `${dir}/regs`;
  await Deno.writeTextFile(path, A.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--watch"]);
  try {
    const port = await sipdir.port();
    assertOk(await serving(port, A));

    // Write then rename, as export jobs publish.
    let from = sipdir.stderr.length;
    await Deno.writeTextFile(`${dir}/regs.tmp`, B.text);
    await Deno.rename(`${dir}/regs.tmp`, path);
    assertOk((await nextReload(sipdir, from)).includes("reloaded"));
    assertOk(await serving(port, B));

    // Rewritten in place, as cp and editors do.
    from = sipdir.stderr.length;
    await Deno.writeTextFile(path, A.text);
    assertOk((await nextReload(sipdir, from)).includes("reloaded"));
    assertOk(await serving(port, A));

    // A burst of writes makes one reload, once the file is quiet.
    const before = (await sipdir.counters()).reloads;
    from = sipdir.stderr.length;
    for (let i = 0; i < 20; i++) await Deno.writeTextFile(path, i % 2 ? A.text : B.text);
    assertOk((await nextReload(sipdir, from)).includes("reloaded"));
    assertOk(await serving(port, A));
    assertEquals((await sipdir.counters()).reloads, before + 1);

    // A bad file keeps the old data; the good one that follows is served.
    from = sipdir.stderr.length;
    await Deno.writeTextFile(path, `${B.answers.get(B.aors[0])}\n{"addressOfRecord":\n`);
    assertOk((await nextReload(sipdir, from)).includes("reload failed"));
    assertOk(await serving(port, A));
    from = sipdir.stderr.length;
    await Deno.writeTextFile(path, B.text);
    assertOk((await nextReload(sipdir, from)).includes("reloaded"));
    assertOk(await serving(port, B));

    // Removed: still serving; back: reloaded.
    from = sipdir.stderr.length;
    await Deno.remove(path);
    await sipdir.waitFor(/is gone: still serving/, 20_000, from);
    assertOk(await serving(port, B));
    from = sipdir.stderr.length;
    await Deno.writeTextFile(path, A.text);
    assertOk((await nextReload(sipdir, from)).includes("reloaded"));
    assertOk(await serving(port, A));
    const counters = await sipdir.counters();
    assertEquals(counters.reloadFailures, 1);
  } finally {
    sipdir.kill("SIGTERM");
    assertEquals((await sipdir.exit()).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watch: a dump rewritten in place by a writer that stalls is not loaded until it closes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-watch-" });
  const path = `${dir}/regs`;
  await Deno.writeTextFile(path, A.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--watch"]);
  try {
    const port = await sipdir.port();
    // As cp over the file does, with a stall after 60% of it (a slow disk, a
    // network copy): far longer than the quiet time.
    const from = sipdir.stderr.length;
    const bytes = new TextEncoder().encode(B.text);
    const cut = bytes.lastIndexOf(0x0a, Math.floor(bytes.length * 0.6)) + 1;
    const file = await Deno.open(path, { write: true, truncate: true });
    try {
      await file.write(bytes.subarray(0, cut));
      await sipdir.waitFor(
        /being written in place: reloading once its writer closes it/,
        20_000,
        from,
      );
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // Nothing of the half-written file is served: still all of A.
      assertOk(await serving(port, A));
      assertEquals((await sipdir.counters()).reloads, 0);
      let done = cut;
      while (done < bytes.length) done += await file.write(bytes.subarray(done));
    } finally {
      file.close();
    }
    assertOk((await nextReload(sipdir, from)).includes("reloaded"));
    assertOk(await serving(port, B));
    const client = await LineClient.connect(port);
    await client.send(`${B.aors.at(-1)}\n`);
    assertEquals(await client.line(), B.answer(B.aors.at(-1)!));
    client.close();
    assertEquals((await sipdir.counters()).reloads, 1);
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("watch: a dump published while the first one loads is served once that load ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-watch-" });
  const path = `${dir}/regs`;
  // The first dump comes through a FIFO: its load lasts until the test ends it.
  await new Deno.Command("mkfifo", { args: [path] }).output();
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--watch"]);
  try {
    // Opening the FIFO for writing waits until sipdir's load opened it for reading.
    const fifo = await Deno.open(path, { write: true });
    // Meanwhile B is published the usual way, over the path being loaded.
    await Deno.writeTextFile(`${dir}/regs.tmp`, B.text);
    await Deno.rename(`${dir}/regs.tmp`, path);
    const bytes = new TextEncoder().encode(A.text);
    let done = 0;
    while (done < bytes.length) done += await fifo.write(bytes.subarray(done));
    fifo.close();
    const port = await sipdir.port();
    await nextReload(sipdir, 0);
    assertOk(await serving(port, B), "the dump published during the first load is not served");
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(dir, { recursive: true });
  }
});
