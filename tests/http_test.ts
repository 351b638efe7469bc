/**
 * The operations endpoints: /metrics, /healthz, /readyz, by request and as
 * a process through its lifecycle (loading, serving, stopping).
 */

import { assertEquals, assertOk } from "./assert.ts";
import { handleRequest } from "../lib/operations/http.ts";
import { Dataset, LineClient, SipdirProcess, tempFile } from "./helpers.ts";

const DATA = new Dataset(500, 31);

Deno.test("http: routes, methods, HEAD", async () => {
  let ready = false;
  const options = { metrics: () => "sipdir_x 1\n", ready: () => ready };
  const call = (path: string, method = "GET") =>
    handleRequest(new Request(`http://sipdir${path}`, { method }), options);
  assertEquals(await call("/healthz").text(), "ok\n");
  assertEquals(call("/readyz").status, 503);
  ready = true;
  assertEquals(call("/readyz").status, 200);
  const metrics = call("/metrics");
  assertEquals(metrics.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  assertEquals(await metrics.text(), "sipdir_x 1\n");
  const head = call("/metrics", "HEAD");
  assertEquals([head.status, await head.text()], [200, ""]);
  assertEquals(call("/nope").status, 404);
  const post = call("/metrics", "POST");
  assertEquals([post.status, post.headers.get("allow")], [405, "GET, HEAD"]);
});

/** GET `path` on 127.0.0.1:`port`; returns status and body. */
async function get(port: number, path: string): Promise<[number, string]> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return [response.status, await response.text()];
}

Deno.test("http: /readyz is 503 while loading and stopping, 200 while serving; /metrics counts", async () => {
  // The data comes through a FIFO: the load waits until the test writes it.
  const dir = await Deno.makeTempDir({ prefix: "sipdir-http-" });
  const fifo = `${dir}/regs`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const sipdir = await SipdirProcess.start([
    "-d",
    fifo,
    "-p",
    "0",
    "--redis-port",
    "0",
    "--http-port",
    "0",
  ]);
  try {
    const http = Number((await sipdir.waitFor(/HTTP \(.*\) on \S+:(\d+)/))[1]);
    assertEquals(await get(http, "/healthz"), [200, "ok\n"]);
    assertEquals(await get(http, "/readyz"), [503, "not ready\n"]);
    const loading = (await get(http, "/metrics"))[1];
    assertOk(!loading.includes("sipdir_directory_entries"), loading);
    assertOk(loading.includes("\nsipdir_ready 0\n"), loading);
    await Deno.writeTextFile(fifo, DATA.text);
    const port = await sipdir.port();
    assertEquals(await get(http, "/readyz"), [200, "ready\n"]);

    const client = await LineClient.connect(port);
    await client.send(`${DATA.aors[0]}\n${DATA.aors[1]}\nnobody\n`);
    await client.lines(3);
    const [, metrics] = await get(http, "/metrics");
    for (
      const sample of [
        'sipdir_lookups_total{protocol="line"} 3',
        'sipdir_lookup_hits_total{protocol="line"} 2',
        'sipdir_lookup_misses_total{protocol="line"} 1',
        'sipdir_lookups_total{protocol="redis"} 0',
        "sipdir_directory_entries 500",
        "sipdir_connections_open 1",
        "sipdir_connections_max 10000",
        "sipdir_ready 1",
        "sipdir_last_reload_success 1",
        'sipdir_build_info{version="1.0.0"} 1',
      ]
    ) {
      assertOk(metrics.includes(`${sample}\n`), sample);
    }

    // A client that does not read its replies keeps the drain going for its
    // whole grace (2 s): time enough, even on a loaded machine, to see it not ready.
    await client.send(`${DATA.aors[2]}\n`.repeat(20_000));
    sipdir.kill("SIGTERM");
    await sipdir.waitFor(/stopping/);
    assertEquals((await get(http, "/readyz"))[0], 503);
    assertOk((await get(http, "/metrics"))[1].includes("\nsipdir_ready 0\n"));
    client.close();
  } finally {
    sipdir.kill("SIGTERM");
    const { code } = await sipdir.exit();
    assertEquals(code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("http: a reload's outcome and the data's age are on /metrics", async () => {
  const path = await tempFile(DATA.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--http-port", "0"]);
  try {
    const http = Number((await sipdir.waitFor(/HTTP \(.*\) on \S+:(\d+)/))[1]);
    await sipdir.port();
    await Deno.writeTextFile(path, "");
    const from = sipdir.stderr.length;
    sipdir.kill("SIGHUP");
    await sipdir.waitFor(/reload refused/, 20_000, from);
    const [, metrics] = await get(http, "/metrics");
    assertOk(metrics.includes("sipdir_reload_refusals_total 1\n"), metrics);
    assertOk(metrics.includes("sipdir_last_reload_success 0\n"), metrics);
    const at = Number(metrics.match(/^sipdir_last_reload_timestamp_seconds (\S+)$/m)![1]);
    assertOk(Math.abs(at - Date.now() / 1000) < 60, String(at));
    assertOk(/^sipdir_directory_age_seconds \d/m.test(metrics));
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
});
