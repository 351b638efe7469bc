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
