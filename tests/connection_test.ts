/**
 * Connections that must not hurt one another, or themselves: ends that
 * deliver every reply written before them, faults contained to their
 * connection, buffers that shrink after a burst and never serve two writes
 * at once, and one bound on what all clients hold together.
 */

import { assertAtMost, assertEquals, assertOk } from "./assert.ts";
import type { Directory } from "../lib/directory/directory.ts";
import { LiveDirectory } from "../lib/directory/live.ts";
import { Counters } from "../lib/operations/counters.ts";
import { LineProtocol } from "../lib/protocol/line.ts";
import type { Protocol, Replies } from "../lib/protocol/protocol.ts";
import { RedisProtocol } from "../lib/protocol/redis/redis.ts";
import { Connection } from "../lib/transport/connection.ts";
import { Connections } from "../lib/transport/connections.ts";
import type { ServeOptions, Server } from "../lib/transport/server.ts";
import { concat } from "../testing/bytes.ts";
import { Dataset, directoryOf, LineClient, withServer as withServerOf } from "./helpers.ts";

const DATA = new Dataset(2000, 23);
const directory = await directoryOf(DATA.text);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const info = { version: "1", connectedClients: () => 1, uptimeSeconds: () => 1, port: () => 1 };

const withServer = (options: Partial<ServeOptions>, fn: (server: Server) => Promise<void>) =>
  withServerOf(DATA.text, options, fn);

/**
 * Sends `request` whole, then reads until the server ends the connection;
 * returns what came and whether the end was a reset rather than a clean end.
 */
async function exchangeUntilEnd(
  port: number,
  request: Uint8Array,
): Promise<{ reply: string; reset: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  const reading = (async () => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return false;
        chunks.push(buf.slice(0, n));
      }
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return true;
      throw error;
    }
  })();
  try {
    let done = 0;
    while (done < request.length) done += await conn.write(request.subarray(done));
  } catch {
    // The server ended the connection while we still sent: what matters is what we read.
  }
  const reset = await reading;
  conn.close();
  return { reply: decoder.decode(concat(chunks)), reset };
}

Deno.test("connection: an end after a protocol error delivers every reply before it, no reset", async () => {
  // The server ends these connections with unread input behind the bad
  // request: closing then would reset the connection, and the kernel may
  // drop the replies just written. Each try is a fresh race.
  const redis = new RedisProtocol({ info });
  await withServer({
    listen: [{ port: 0, protocol: new LineProtocol() }, { port: 0, protocol: redis }],
  }, async (server) => {
    const linePort = server.addrs.get("line")!.port;
    const redisPort = server.addrs.get("redis")!.port;
    const trailing = "x".repeat(256 * 1024);
    for (let i = 0; i < 20; i++) {
      const key = "k".repeat(5000);
      const bad = await exchangeUntilEnd(
        redisPort,
        encoder.encode(`*2\r\n$3\r\nGET\r\n$5000\r\n${key}\r\n${trailing}`),
      );
      assertEquals(bad, { reply: "-ERR Protocol error: invalid bulk length\r\n", reset: false });
      const lines = DATA.aors.slice(0, 500);
      const overlong = await exchangeUntilEnd(
        linePort,
        encoder.encode(
          lines.map((aor) => `${aor}\n`).join("") + "y".repeat(2000) + "\n" + trailing,
        ),
      );
      assertEquals(overlong.reset, false, `try ${i}: reset`);
      assertEquals(overlong.reply, lines.map((aor) => `${DATA.answer(aor)}\n`).join(""));
    }
    assertEquals(server.counters.connectionErrors, 0);
  });
});

Deno.test("connection: a fault in one connection's handling closes that connection only", async () => {
  /** The line protocol, but a request `boom` throws, as a bug would. */
  class FaultyProtocol implements Protocol<{ line: unknown }> {
    readonly name = "line";
    readonly maxRequest: number;
    readonly #line = new LineProtocol();
    constructor() {
      this.maxRequest = this.#line.maxRequest;
    }
    createState() {
      return { line: this.#line.createState() };
    }
    answer(
      state: { line: unknown },
      buf: Uint8Array,
      pos: number,
      len: number,
      eof: boolean,
      replies: Replies,
    ): number {
      if (decoder.decode(buf.subarray(pos, len)).startsWith("boom")) throw new Error("a bug");
      return this.#line.answer(state.line as never, buf, pos, len, eof, replies);
    }
  }
  await withServer({ listen: [{ port: 0, protocol: new FaultyProtocol() }] }, async (server) => {
    const port = server.addr.port;
    const good = await LineClient.connect(port);
    const faulty = await LineClient.connect(port);
    await good.send(`${DATA.aors[0]}\n`);
    assertEquals(await good.line(), DATA.answer(DATA.aors[0]));
    await faulty.send("boom\n");
    await faulty.closed();
    // The process, the listener and the other connection go on.
    await good.send(`${DATA.aors[1]}\n`);
    assertEquals(await good.line(), DATA.answer(DATA.aors[1]));
    const late = await LineClient.connect(port);
    await late.send(`${DATA.aors[2]}\n`);
    assertEquals(await late.line(), DATA.answer(DATA.aors[2]));
    good.close();
    late.close();
    faulty.close();
    assertEquals(server.counters.connectionFaults, 1);
  });
});

Deno.test("connection: read buffers shrink back after a pipelined burst", async () => {
  await withServer({}, async (server) => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, () => LineClient.connect(server.addr.port)),
    );
    const burst = Array.from({ length: 2000 }, (_, i) => DATA.aors[i % 500]);
    const text = burst.map((aor) => `${aor}\n`).join("");
    await Promise.all(clients.map(async (client) => {
      await client.send(text);
      await client.lines(burst.length);
    }));
    // Every connection is back to its own 1 KiB, plus the little a
    // connection's own bookkeeping counts.
    assertAtMost(server.clientMemory, 50 * 2048, "bytes held by 50 idle connections");
    for (const client of clients) client.close();
  });
});

Deno.test("connection: a client that keeps pipelining more than 1 KiB gets a larger buffer, then gives it back", async () => {
  await withServer({}, async (server) => {
    const client = await LineClient.connect(server.addr.port);
    const line = server.counters.protocol("line");
    // 60 requests a round trip, about 1.9 KB: more than its own 1 KiB holds.
    const round = async (requests: number, offset: number) => {
      const aors = Array.from({ length: requests }, (_, i) => DATA.aors[(offset + i) % 2000]);
      await client.send(aors.map((aor) => `${aor}\n`).join(""));
      assertEquals(await client.lines(requests), aors.map((aor) => DATA.answer(aor)));
    };
    for (let i = 0; i < 20; i++) await round(60, i * 60);
    // Grown: one read, one write a round trip from then on.
    const writes = line.writes;
    for (let i = 0; i < 20; i++) await round(60, i * 60);
    assertAtMost(line.writes - writes, 25, "writes for 20 round trips of 60 requests");
    assertOk(server.clientMemory >= 2048, `${server.clientMemory} bytes: not grown`);
    // One request at a time for a while: back to 1 KiB.
    for (let i = 0; i < 80; i++) await round(1, i);
    assertEquals(server.clientMemory, 1024, "bytes held once it stopped pipelining");
    client.close();
  });
});

/** A stand-in for a socket whose writes complete only when the test says so. */
class StalledConn {
  readonly remoteAddr: Deno.NetAddr = { transport: "tcp", hostname: "127.0.0.1", port: 9 };
  readonly writes: { bytes: Uint8Array; done: () => void; failed: (e: Error) => void }[] = [];
  #input: Uint8Array[] = [];
  #reader: ((n: number | null) => void) | null = null;
  #target: Uint8Array | null = null;
  closed = false;

  feed(text: string): void {
    this.#input.push(encoder.encode(text));
    this.#deliver();
  }

  read(buf: Uint8Array): Promise<number | null> {
    this.#target = buf;
    const { promise, resolve } = Promise.withResolvers<number | null>();
    this.#reader = resolve;
    this.#deliver();
    return promise;
  }

  write(bytes: Uint8Array): Promise<number> {
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    this.writes.push({ bytes, done: () => resolve(bytes.length), failed: reject });
    return promise;
  }

  close(): void {
    this.closed = true;
    this.#reader?.(null);
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  setNoDelay(): void {}
  setKeepAlive(): void {}

  #deliver(): void {
    if (this.#reader === null || this.#input.length === 0) return;
    const chunk = this.#input.shift()!;
    this.#target!.set(chunk);
    const reader = this.#reader;
    this.#reader = null;
    reader(chunk.length);
  }
}

Deno.test("connection: no reply buffer serves another connection while a write of it is in flight", async () => {
  const connections = new Connections({
    live: new LiveDirectory(directory as Directory),
    counters: new Counters(),
    maxClients: 10,
    maxPending: 8 * 1024,
    maxClientMemory: 1 << 30,
    lingerTime: 100,
  });
  const stalled = new StalledConn();
  const port = {
    protocol: new LineProtocol(),
    idleTimeout: 0,
    stallTimeout: 0,
    keepAlive: false,
  };
  const connection = new Connection(connections, stalled as unknown as Deno.TcpConn, port);
  connection.start();
  // Two requests in one read: their replies are copied into a pooled buffer.
  stalled.feed(`${DATA.aors[0]}\n${DATA.aors[1]}\n`);
  while (stalled.writes.length === 0) await new Promise((resolve) => setTimeout(resolve, 1));
  const inFlight = stalled.writes[0].bytes;
  const expected = inFlight.slice();
  connection.close("closed while writing");
  // Whatever others take from the pool now, the bytes of the write in flight stay as they were.
  for (let i = 0; i < 40; i++) connections.pool.take().fill(0x21);
  assertEquals(decoder.decode(inFlight), decoder.decode(expected));
  stalled.writes[0].failed(new Deno.errors.BadResource("closed"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertOk(stalled.closed);
});
