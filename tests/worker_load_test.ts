import { assertEquals, assertOk, assertRejects } from "./assert.ts";
import { DataError, loadDirectory } from "../lib/loading/load.ts";
import { WorkerLoader } from "../lib/loading/worker_load.ts";
import { Dataset, record, tempFile } from "./helpers.ts";

const DATA = new Dataset(3000, 16);
const CRASHING = new URL("./fixtures/crashing_load_worker.ts", import.meta.url);

Deno.test("worker load: the same directory as loading on this thread, progress reported", async () => {
  const path = await tempFile(DATA.text);
  const loader = new WorkerLoader();
  try {
    const progress: number[] = [];
    const { directory, report } = await loader.load({
      path,
      chunkSize: 64 * 1024,
      onProgress: (done) => progress.push(done),
    });
    const here = await loadDirectory({ path, chunkSize: 64 * 1024 });
    assertEquals({ ...report, ms: 0 }, { ...here.report, ms: 0 });
    for (const aor of DATA.aors) {
      assertEquals(directory.get(aor), here.directory.get(aor));
    }
    assertEquals(directory.get("unknown"), undefined);
    assertEquals(directory.byteLength, here.directory.byteLength);
    assertOk(progress.length > 0 && progress.at(-1) === report.bytes, String(progress));
    // The same worker loads again.
    assertEquals((await loader.load({ path })).report.entries, 3000);
  } finally {
    loader.close();
    await Deno.remove(path);
  }
});

Deno.test("worker load: a bad line is a DataError with file and line, as on this thread", async () => {
  const path = await tempFile(`${record("a")}\n{"addressOfRecord": 1}\n`);
  const loader = new WorkerLoader();
  try {
    const there = await assertRejects(loader.load({ path }), DataError);
    const here = await assertRejects(loadDirectory({ path }), DataError);
    assertEquals([there.message, there.line], [here.message, 2]);
    const missing = await assertRejects(loader.load({ path: `${path}.missing` }), DataError);
    assertEquals(missing.message, `${path}.missing: cannot open: no such file`);
    assertOk(String(missing.cause).includes("NotFound"), String(missing.cause));
  } finally {
    loader.close();
    await Deno.remove(path);
  }
});

Deno.test("worker load: a worker that crashes is a DataError, and the next load gets a new worker", async () => {
  const good = await tempFile(DATA.text);
  const crash = await tempFile(DATA.text);
  await Deno.rename(crash, `${crash}-crash`);
  const loader = new WorkerLoader(CRASHING);
  try {
    assertEquals((await loader.load({ path: good })).report.entries, 3000);
    const error = await assertRejects(loader.load({ path: `${crash}-crash` }), DataError);
    assertOk(
      error.message.includes("the loader stopped: Uncaught Error: worker crashed on purpose"),
      error.message,
    );
    assertEquals((await loader.load({ path: good })).report.entries, 3000);
  } finally {
    loader.close();
    await Deno.remove(good);
    await Deno.remove(`${crash}-crash`);
  }
});

Deno.test("worker load: a dump too large for this machine's memory is a DataError", async () => {
  // A sparse terabyte: the index sized for it cannot be allocated.
  const path = await tempFile(record("a") + "\n");
  await Deno.truncate(path, 2 ** 40);
  const loader = new WorkerLoader();
  try {
    const error = await assertRejects(loader.load({ path }), DataError);
    assertOk(error.message.startsWith(`${path}: cannot load: RangeError:`), error.message);
    assertEquals((await loader.load({ path: "data/regs" })).report.entries, 995);
  } finally {
    loader.close();
    await Deno.remove(path);
  }
});
