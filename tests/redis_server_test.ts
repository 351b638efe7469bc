/**
 * The Redis port beside the line port, over sockets: shared limits and
 * counters, errors confined to their connection, back-pressure on a huge
 * MGET; and as a process, its flags.
 */

import { assertAtMost, assertEquals, assertOk } from "./assert.ts";
import { LineProtocol } from "../lib/protocol/line.ts";
import { RedisProtocol } from "../lib/protocol/redis/redis.ts";
import type { ServeOptions, Server } from "../lib/transport/server.ts";
import { Dataset, LineClient, runSipdir, SipdirProcess, tempFile, withServer } from "./helpers.ts";

const DATA = new Dataset(2000, 21);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const info = { version: "1", connectedClients: () => 0, uptimeSeconds: () => 0, port: () => 0 };

function command(args: readonly string[]): string {
  return `*${args.length}\r\n` +
    args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("");
}

function cmd(...args: string[]): string {
  return command(args);
}

function bulk(text: string): string {
  return `$${encoder.encode(text).length}\r\n${text}\r\n`;
}

const withBoth = (
  options: Partial<ServeOptions>,
  fn: (server: Server, line: number, redis: number) => Promise<void>,
) =>
  withServer(DATA.text, {
    ...options,
    listen: [
      { port: 0, protocol: new LineProtocol() },
      { port: 0, protocol: new RedisProtocol({ info }) },
    ],
  }, (server) => fn(server, server.addrs.get("line")!.port, server.addrs.get("redis")!.port));

/** Reads from `conn` until `expected` bytes came, or the connection ends. */
async function readBytes(conn: Deno.TcpConn, expected: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buf = new Uint8Array(256 * 1024);
  while (total < expected) {
    const n = await conn.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return decoder.decode(all);
}

async function send(conn: Deno.TcpConn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

Deno.test("redis server: both ports answer from one directory; counters split by protocol", async () => {
  await withBoth({}, async (server, linePort, redisPort) => {
    const [hit, miss] = [DATA.aors[3], "nobody"];
    const line = await LineClient.connect(linePort);
    await line.send(`${hit}\n${miss}\n`);
    assertEquals(await line.lines(2), [DATA.answer(hit), ""]);
    const redis = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    const expected = bulk(DATA.answer(hit)) + "$-1\r\n" + `*2\r\n${bulk(DATA.answer(hit))}$-1\r\n`;
    await send(redis, cmd("GET", hit) + cmd("GET", miss) + cmd("MGET", hit, miss));
    assertEquals(await readBytes(redis, encoder.encode(expected).length), expected);
    line.close();
    redis.close();
    const counters = server.counters.snapshot();
    assertEquals([counters.lookups, counters["line.lookups"], counters["redis.lookups"]], [
      6,
      2,
      4,
    ]);
    assertEquals([counters["redis.hits"], counters["redis.misses"]], [2, 2]);
  });
});

Deno.test("redis server: --max-clients counts both ports together", async () => {
  await withBoth({ maxClients: 2 }, async (server, linePort, redisPort) => {
    const line = await LineClient.connect(linePort);
    const redis = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    await send(redis, cmd("PING"));
    assertEquals(await readBytes(redis, 7), "+PONG\r\n");
    await line.send("nobody\n");
    assertEquals(await line.line(), "");
    // A third, on either port, is closed at once.
    const extra = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    assertEquals(await readBytes(extra, 1), "");
    extra.close();
    assertEquals(server.counters.rejected, 1);
    line.close();
    redis.close();
  });
});

Deno.test("redis server: a protocol error closes only its connection", async () => {
  await withBoth({}, async (server, _linePort, redisPort) => {
    const bad = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    const good = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    await send(bad, cmd("PING") + "*1\r\n$x\r\n");
    assertEquals(
      await readBytes(bad, 1 << 20),
      "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n",
    );
    bad.close();
    await send(good, cmd("GET", DATA.aors[0]));
    const expected = bulk(DATA.answer(DATA.aors[0]));
    assertEquals(await readBytes(good, encoder.encode(expected).length), expected);
    good.close();
    assertEquals(server.counters.protocol("redis").protocolErrors, 1);
  });
});

Deno.test("redis server: a 200 000-key MGET from a client that does not read stalls only that client", async () => {
  await withBoth({ maxPending: 64 * 1024 }, async (server, _linePort, redisPort) => {
    const keys = Array.from(
      { length: 200_000 },
      (_, i) => i % 3 === 0 ? `none${i}` : DATA.aors[i % 2000],
    );
    const expected = `*${keys.length}\r\n` +
      keys.map((k) => DATA.answers.has(k) ? bulk(DATA.answer(k)) : "$-1\r\n").join("");
    const greedy = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    const sending = send(greedy, command(["MGET", ...keys])).catch(() => {});
    // It does not read: after a while, the server has answered only what its
    // socket buffers and max-pending hold, and reads no more of it.
    let lookups = -1;
    for (let i = 0; i < 100 && server.counters.lookups !== lookups; i++) {
      lookups = server.counters.lookups;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertAtMost(lookups, 60_000, "keys answered while the client did not read");
    // Meanwhile another client is served.
    const other = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    await send(other, cmd("EXISTS", DATA.aors[1]));
    assertEquals(await readBytes(other, 4), ":1\r\n");
    other.close();
    // Once it reads, it gets every reply, in order.
    const got = await readBytes(greedy, encoder.encode(expected).length);
    await sending;
    assertOk(got === expected, `MGET reply differs (${got.length} of ${expected.length} chars)`);
    greedy.close();
  });
});

Deno.test("redis server: idle connections are closed after the timeout", async () => {
  await withBoth({ idleTimeout: 200 }, async (server, _linePort, redisPort) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: redisPort });
    assertEquals(await readBytes(conn, 1), "");
    conn.close();
    assertEquals(server.counters.idleClosed, 1);
  });
});

Deno.test("redis process: --redis-port 0 logs the port; --redis-password-file is required to be readable", async () => {
  const path = await tempFile(DATA.text);
  const passwordFile = await tempFile("s3cret\n");
  const sipdir = await SipdirProcess.start([
    "-d",
    path,
    "-p",
    "0",
    "--redis-port",
    "0",
    "--redis-password-file",
    passwordFile,
  ]);
  try {
    await sipdir.port();
    const port = Number((await sipdir.waitFor(/Redis protocol on \S+:(\d+), AUTH required/))[1]);
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await send(conn, cmd("GET", DATA.aors[0]) + cmd("AUTH", "s3cret") + cmd("DBSIZE"));
    const expected = "-NOAUTH Authentication required.\r\n+OK\r\n:2000\r\n";
    assertEquals(await readBytes(conn, expected.length), expected);
    conn.close();
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
  }
  const missing = await runSipdir([
    "-d",
    path,
    "-p",
    "0",
    "--redis-port",
    "0",
    "--redis-password-file",
    "/nonexistent/pw",
  ]);
  assertEquals(missing.code, 1);
  assertOk(
    missing.stderr.includes("cannot read the Redis password from /nonexistent/pw"),
    missing.stderr,
  );
  await Deno.remove(path);
  await Deno.remove(passwordFile);
});
