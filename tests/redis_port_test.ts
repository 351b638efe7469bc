/**
 * The Redis port as a network service: its own address, how long its
 * connections are kept, protected mode's refusal, and what hostile commands
 * can make the process hold (measured on a sipdir process).
 */

import { assertAtMost, assertEquals, assertOk } from "./assert.ts";
import { parseFlags, UsageError } from "../lib/cli/flags.ts";
import { LineProtocol } from "../lib/protocol/line.ts";
import { DENIED } from "../lib/protocol/redis/protected_mode.ts";
import { RedisProtocol } from "../lib/protocol/redis/redis.ts";
import type { ServeOptions, Server } from "../lib/transport/server.ts";
import { assertThrows } from "./assert.ts";
import { Dataset, SipdirProcess, tempFile, withServer as withServerOf } from "./helpers.ts";

const MiB = 1024 * 1024;
const DATA = new Dataset(2000, 21);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const info = { version: "1", connectedClients: () => 1, uptimeSeconds: () => 1, port: () => 1 };

function cmd(...args: string[]): string {
  return command(args);
}

/** RESP multibulk encoding of a command given as an array (any length). */
function command(args: readonly string[]): string {
  return `*${args.length}\r\n` +
    args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("");
}

const withServer = (options: Partial<ServeOptions>, fn: (server: Server) => Promise<void>) =>
  withServerOf(DATA.text, options, fn);

/** Reads from `conn` until `length` bytes came or it ends; the bytes as text. */
async function read(conn: Deno.Conn, length: number): Promise<string> {
  const buf = new Uint8Array(64 * 1024);
  let text = "";
  while (encoder.encode(text).length < length) {
    const n = await conn.read(buf);
    if (n === null) break;
    text += decoder.decode(buf.subarray(0, n));
  }
  return text;
}

/** Resolves with true once the server ends `conn`, or false after `ms` without. */
async function endsWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  const buf = new Uint8Array(1024);
  let id: ReturnType<typeof setTimeout> | undefined;
  const timer = new Promise<false>((resolve) => id = setTimeout(() => resolve(false), ms));
  const ended = (async () => {
    try {
      while ((await conn.read(buf)) !== null) { /* discard */ }
    } catch {
      // A reset is an end too.
    }
    return true;
  })();
  const result = await Promise.race([ended, timer]);
  clearTimeout(id);
  return result;
}

Deno.test("redis port: [ADDR:]PORT gives each port its own address", async () => {
  const flags = parseFlags([
    "--ip",
    "10.0.0.5",
    "--redis-port",
    "127.0.0.1:6379",
    "--http-port",
    "9234",
  ]);
  assertEquals([flags.ip, flags.redisIp, flags.redisPort], ["10.0.0.5", "127.0.0.1", 6379]);
  assertEquals([flags.httpIp, flags.httpPort], ["10.0.0.5", 9234]);
  const v6 = parseFlags(["--redis-port", "[::1]:0", "--http-port", "[::]:9234"]);
  assertEquals([v6.redisIp, v6.redisPort, v6.httpIp, v6.httpPort], ["::1", 0, "::", 9234]);
  for (const bad of ["::1:6379", ":6379", "127.0.0.1:", "127.0.0.1:70000", "[::1]"]) {
    assertThrows(() => parseFlags(["--redis-port", bad]), UsageError);
  }
  // Served: the line port on one loopback address, the Redis port on another.
  await withServer({
    hostname: "127.0.0.1",
    listen: [
      { port: 0, protocol: new LineProtocol() },
      { hostname: "127.0.0.2", port: 0, protocol: new RedisProtocol({ info }) },
    ],
  }, async (server) => {
    assertEquals(server.addrs.get("line")!.hostname, "127.0.0.1");
    const redis = server.addrs.get("redis")!;
    assertEquals(redis.hostname, "127.0.0.2");
    const conn = await Deno.connect({ hostname: "127.0.0.2", port: redis.port });
    await conn.write(encoder.encode(cmd("PING")));
    assertEquals(await read(conn, 7), "+PONG\r\n");
    conn.close();
  });
  // And as a process: the address is in the log line the port is read from.
  const path = await tempFile(DATA.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--redis-port", "127.0.0.3:0"]);
  try {
    await sipdir.port();
    await sipdir.waitFor(/Redis protocol on 127\.0\.0\.3:\d+/);
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
});

Deno.test("redis port: idle connections are kept with keepalive; stalled ones time out", async () => {
  const password = encoder.encode("pw");
  await withServer({
    listen: [{
      port: 0,
      protocol: new RedisProtocol({ info, password }),
      idleTimeout: 0,
      stallTimeout: 400,
      keepAlive: true,
    }],
  }, async (server) => {
    const port = server.addr.port;
    const connect = () => Deno.connect({ hostname: "127.0.0.1", port });
    const idle = await connect();
    await idle.write(encoder.encode(cmd("AUTH", "pw")));
    assertEquals(await read(idle, 5), "+OK\r\n");
    const stalled = await connect();
    await stalled.write(encoder.encode(cmd("AUTH", "pw") + "*2\r\n$3\r\nGET\r\n"));
    assertEquals(await read(stalled, 5), "+OK\r\n");
    const anonymous = await connect();
    // Mid-command, and not authenticated: each closed after the stall timeout.
    assertOk(await endsWithin(stalled, 5000), "a connection stalled mid-command was kept");
    assertOk(await endsWithin(anonymous, 5000), "an unauthenticated connection was kept");

    // Not authenticated, however busy: its -NOAUTH replies are no activity,
    // so guessing passwords on one connection ends at the stall timeout.
    const guesser = await connect();
    const ended = endsWithin(guesser, 10_000);
    let guesses = 0;
    const guessing = (async () => {
      try {
        for (;;) {
          await guesser.write(encoder.encode(cmd("AUTH", `guess${guesses++}`)));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      } catch {
        // Closed by the server.
      }
    })();
    assertOk(await ended, `an unauthenticated client was kept through ${guesses} guesses`);
    await guessing;

    // Well past the stall timeout, the idle one is still served, as Redis
    // keeps it; a command it then sends in two parts has the whole stall
    // timeout, counted from its first part, not from the last reply.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await idle.write(encoder.encode("*2\r\n$3\r\nGET\r\n"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await idle.write(encoder.encode("$6\r\nnobody\r\n"));
    assertEquals(await read(idle, 5), "$-1\r\n");
    await idle.write(encoder.encode(cmd("PING")));
    assertEquals(await read(idle, 7), "+PONG\r\n");
    assertEquals(server.counters.idleClosed, 3);
    // The kernel probes it: a peer that vanished is found. (Its timer shows
    // "retransmit" until the client's ack of the last reply comes.)
    let timers: string[] = [];
    for (let tries = 0; tries < 100; tries++) {
      timers = await tcpTimers(port);
      if (timers[0] === "keepalive") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertEquals(timers, ["keepalive"]);
    for (const conn of [idle, stalled, anonymous, guesser]) conn.close();
  });
});

/**
 * The timers of the established TCP connections whose local port is
 * `port`, read from `/proc/net/tcp` and `tcp6` (what `ss -o` shows).
 */
async function tcpTimers(port: number): Promise<string[]> {
  const kinds = ["off", "retransmit", "keepalive", "time-wait", "zero-window-probe"];
  const timers: string[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await Deno.readTextFile(table).catch(() => "");
    for (const row of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when ...
      const [, local, , state, , timer] = row.trim().split(/\s+/);
      if (local === undefined || state !== "01") continue; // 01: established
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) !== port) continue;
      timers.push(kinds[parseInt(timer.split(":")[0], 16)] ?? timer);
    }
  }
  return timers;
}

Deno.test("redis port: a refused client gets the refusal whole, then the end", async () => {
  await withServer({
    listen: [{ port: 0, protocol: new RedisProtocol({ info }), refuse: () => DENIED }],
  }, async (server) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await conn.write(encoder.encode(cmd("GET", DATA.aors[0])));
    assertEquals(await read(conn, Infinity), decoder.decode(DENIED));
    conn.close();
    assertEquals([server.counters.denied, server.counters.lookups], [1, 0]);
  });
});

/** The most a sipdir process's resident memory grew while `during` ran. */
async function peakGrowth(sipdir: SipdirProcess, during: Promise<unknown>): Promise<number> {
  const before = await sipdir.rss();
  let peak = before;
  let done = false;
  during.finally(() => done = true);
  while (!done) {
    peak = Math.max(peak, await sipdir.rss());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await during;
  return Math.max(peak, await sipdir.rss()) - before;
}

Deno.test("redis port: a command that never ends, and a 200 000-key MGET, hold little memory", async () => {
  const path = await tempFile(DATA.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", "--redis-port", "0"]);
  try {
    await sipdir.port();
    const port = await sipdir.redisPort();
    // 36 MB of one-byte arguments to a PING that announced 100 million.
    const endless = await Deno.connect({ hostname: "127.0.0.1", port });
    const chunk = encoder.encode("$1\r\nx\r\n".repeat(100_000));
    const grownEndless = await peakGrowth(
      sipdir,
      (async () => {
        await endless.write(encoder.encode("*100000000\r\n$4\r\nPING\r\n"));
        for (let i = 0; i < 50; i++) {
          let done = 0;
          while (done < chunk.length) done += await endless.write(chunk.subarray(done));
        }
      })(),
    );
    console.log(`  endless command: grew by ${(grownEndless / MiB).toFixed(1)} MiB`);
    assertAtMost(grownEndless, 32 * MiB, "growth for 35 MB of arguments, bytes");
    endless.close();
    // A 200 000-key MGET, its reply read as fast as it comes.
    const keys = Array.from({ length: 200_000 }, (_, i) => DATA.aors[i % 2000]);
    const request = encoder.encode(command(["MGET", ...keys]));
    const expected = keys.reduce((n, key) => {
      const length = encoder.encode(DATA.answer(key)).length;
      return n + `$${length}\r\n`.length + length + 2;
    }, `*${keys.length}\r\n`.length);
    const mget = await Deno.connect({ hostname: "127.0.0.1", port });
    let received = 0;
    const grownMget = await peakGrowth(
      sipdir,
      (async () => {
        const sending = (async () => {
          let done = 0;
          while (done < request.length) done += await mget.write(request.subarray(done));
        })();
        const buf = new Uint8Array(1 << 20);
        while (received < expected) {
          const n = await mget.read(buf);
          if (n === null) break;
          received += n;
        }
        await sending;
      })(),
    );
    console.log(
      `  200 000-key MGET: ${(received / MiB).toFixed(0)} MiB of replies, grew by ${
        (grownMget / MiB).toFixed(1)
      } MiB`,
    );
    assertEquals(received, expected, "bytes of replies");
    assertAtMost(grownMget, 32 * MiB, "growth for a 200 000-key MGET, bytes");
    mget.close();
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
});
