import { assertEquals } from "./assert.ts";
import { loadDirectory } from "../lib/loading/load.ts";
import { Reloader } from "../lib/operations/reload.ts";
import { serve } from "../lib/transport/server.ts";
import { LineClient, record, tempFile } from "./helpers.ts";

const load = (path: string) => loadDirectory({ path });

Deno.test("reload: new data is served; a bad file keeps the old data", async () => {
  const path = await tempFile(`${record("a", { v: 1 })}\n`);
  const server = serve({ directory: (await loadDirectory({ path })).directory, port: 0 });
  const client = await LineClient.connect(server.addr.port);
  try {
    const reloader = new Reloader({ live: server.live, counters: server.counters, path, load });
    await client.send("a\nb\n");
    assertEquals(await client.lines(2), [record("a", { v: 1 }), ""]);

    await Deno.writeTextFile(path, `${record("a", { v: 2 })}\n${record("b")}\n`);
    await reloader.request();
    await client.send("a\nb\n");
    assertEquals(await client.lines(2), [record("a", { v: 2 }), record("b")]);
    assertEquals(server.counters.reloads, 1);

    await Deno.writeTextFile(path, `${record("c")}\n{"addressOfRecord":\n`);
    await reloader.request();
    await client.send("a\nc\n");
    assertEquals(await client.lines(2), [record("a", { v: 2 }), ""]);
    assertEquals(server.counters.reloadFailures, 1);

    await Deno.remove(path);
    await reloader.request();
    assertEquals(server.counters.reloadFailures, 2);
  } finally {
    client.close();
    await server.shutdown(500);
    await Deno.remove(path).catch(() => {});
  }
});

Deno.test("reload: requests during a reload make one more reload, not one each", async () => {
  const path = await tempFile(`${record("a")}\n`);
  const server = serve({ directory: (await loadDirectory({ path })).directory, port: 0 });
  try {
    const reloader = new Reloader({ live: server.live, counters: server.counters, path, load });
    const first = reloader.request();
    const others = [reloader.request(), reloader.request(), reloader.request()];
    await Promise.all([first, ...others]);
    assertEquals(server.counters.reloads, 2);
  } finally {
    await server.shutdown(500);
    await Deno.remove(path);
  }
});
