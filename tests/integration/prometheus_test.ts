/**
 * sipdir's /metrics with Prometheus's own tools (Debian package
 * `prometheus`): the exposition passes `promtool check metrics`, and a real
 * Prometheus scraping sipdir sees it up and counts the lookups made.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Dataset, LineClient, SipdirProcess, tempFile } from "../helpers.ts";

const DATA = new Dataset(2000, 51);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Polls `check` every 200 ms until it returns a value, for up to `ms`. */
async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

Deno.test("prometheus: promtool accepts the metrics; a real Prometheus scrapes them", async () => {
  const path = await tempFile(DATA.text);
  const dir = await Deno.makeTempDir({ prefix: "sipdir-prometheus-" });
  const sipdir = await SipdirProcess.start([
    "-d",
    path,
    "-p",
    "0",
    "--redis-port",
    "0",
    "--http-port",
    "0",
  ]);
  let prometheus: Deno.ChildProcess | undefined;
  try {
    const http = Number((await sipdir.waitFor(/HTTP \(.*\) on \S+:(\d+)/))[1]);
    const port = await sipdir.port();
    const lookups = 137;
    const client = await LineClient.connect(port);
    await client.send(Array.from({ length: lookups }, (_, i) => DATA.aors[i] + "\n").join(""));
    await client.lines(lookups);
    client.close();

    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    const check = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = check.stdin.getWriter();
    await writer.write(new TextEncoder().encode(metrics));
    await writer.close();
    const checked = await check.output();
    const said = new TextDecoder().decode(checked.stdout) +
      new TextDecoder().decode(checked.stderr);
    console.log(
      `  promtool check metrics: exit ${checked.code}${
        said.trim() ? `: ${said.trim()}` : ", nothing to report"
      }`,
    );
    assertEquals(checked.code, 0, said);
    assertEquals(said.trim(), "", said);

    const web = freePort();
    await Deno.writeTextFile(
      `${dir}/prometheus.yml`,
      `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sipdir\n    static_configs:\n      - targets: ["127.0.0.1:${http}"]\n`,
    );
    prometheus = new Deno.Command("prometheus", {
      args: [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=127.0.0.1:${web}`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const query = async (promql: string) => {
      const url = `http://127.0.0.1:${web}/api/v1/query?query=${encodeURIComponent(promql)}`;
      const body = await (await fetch(url)).json();
      return body.data?.result?.[0]?.value?.[1] as string | undefined;
    };
    const up = await until(
      "up == 1",
      60_000,
      async () => (await query('up{job="sipdir"}')) === "1" ? "1" : undefined,
    );
    const counted = await until(
      "sipdir_lookups_total",
      60_000,
      () => query('sipdir_lookups_total{job="sipdir",protocol="line"}'),
    );
    const entries = await until(
      "sipdir_directory_entries",
      60_000,
      () => query("sipdir_directory_entries"),
    );
    console.log(
      `  prometheus: up=${up} sipdir_lookups_total{protocol="line"}=${counted} entries=${entries}`,
    );
    assertEquals(Number(counted), lookups);
    assertEquals(Number(entries), 2000);
    assertOk((await query('sipdir_lookups_total{protocol="redis"}')) === "0");
  } finally {
    prometheus?.kill("SIGTERM");
    await prometheus?.status;
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
    await Deno.remove(dir, { recursive: true });
  }
});
