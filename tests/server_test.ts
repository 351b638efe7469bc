import { assertAtMost, assertEquals, assertOk } from "./assert.ts";
import { formatAddress } from "../lib/transport/address.ts";
import { serve, type ServeOptions, type Server } from "../lib/transport/server.ts";
import { directoryOf, LineClient, record, withServer as withServerOf } from "./helpers.ts";

const AORS = Array.from(
  { length: 200 },
  (_, i) => `0142e2fa3543cb32bf0001${String(i).padStart(8, "0")}`,
);
const RECORDS = new Map(AORS.map((aor) => [aor, record(aor, { i: aor.length })]));
const DATA = [...RECORDS.values()].join("\n") + "\n";

const withServer = (
  options: Partial<ServeOptions>,
  fn: (server: Server, port: number) => Promise<void>,
) => withServerOf(DATA, options, fn);

function expected(aor: string): string {
  return RECORDS.get(aor.trim()) ?? "";
}

/** Milliseconds `promise` takes. */
async function timed(promise: Promise<unknown>): Promise<number> {
  const start = performance.now();
  await promise;
  return performance.now() - start;
}

Deno.test("server: answers a hit, a miss and an empty line, in order", async () => {
  await withServer({}, async (_server, port) => {
    const client = await LineClient.connect(port);
    await client.send(`${AORS[0]}\nunknown\n\n  ${AORS[1]}\t\r\n`);
    assertEquals(await client.lines(4), [expected(AORS[0]), "", "", expected(AORS[1])]);
    // Case matters: AORs are opaque.
    await client.send(`${AORS[2].toUpperCase()}\n`);
    assertEquals(await client.line(), AORS[2] === AORS[2].toUpperCase() ? expected(AORS[2]) : "");
    client.close();
  });
});

Deno.test("server: thousands of pipelined requests in one write", async () => {
  await withServer({}, async (server, port) => {
    const requests = Array.from(
      { length: 5000 },
      (_, i) => i % 3 === 0 ? `miss${i}` : AORS[i % AORS.length],
    );
    const client = await LineClient.connect(port);
    await client.send(requests.map((r) => r + "\n").join(""));
    assertEquals(await client.lines(requests.length), requests.map(expected));
    client.close();
    assertEquals(server.counters.lookups, 5000);
  });
});

Deno.test("server: answers are coalesced into few writes for a pipelining client", async () => {
  // Guards the hot path's shape without timing it: one write per read, not
  // one per line.
  await withServer({}, async (server, port) => {
    const client = await LineClient.connect(port);
    await client.send(
      Array.from({ length: 1000 }, (_, i) => AORS[i % AORS.length] + "\n").join(""),
    );
    await client.lines(1000);
    client.close();
    assertEquals(server.counters.lookups, 1000);
    assertAtMost(server.counters.writes, 40, "writes for 1000 pipelined lookups");
  });
});

Deno.test("server: a request split across many segments", async () => {
  await withServer({}, async (_server, port) => {
    const client = await LineClient.connect(port);
    client.conn.setNoDelay(true);
    const text = `${AORS[3]}\r\n${AORS[4]}\n`;
    for (const char of text) await client.send(char);
    assertEquals(await client.lines(2), [expected(AORS[3]), expected(AORS[4])]);
    client.close();
  });
});

Deno.test("server: after a half-close, a last line without LF is answered, then EOF", async () => {
  await withServer({}, async (_server, port) => {
    const client = await LineClient.connect(port);
    await client.send(`${AORS[5]}\n${AORS[6]}`);
    await client.closeWrite();
    assertEquals(await client.lines(2), [expected(AORS[5]), expected(AORS[6])]);
    assertEquals((await client.rest()).length, 0);
    client.close();
  });
});

Deno.test("server: concurrent clients each get their own answers in order", async () => {
  await withServer({}, async (server, port) => {
    const clients = await Promise.all(Array.from({ length: 40 }, () => LineClient.connect(port)));
    await Promise.all(clients.map(async (client, c) => {
      for (let round = 0; round < 5; round++) {
        const requests = Array.from(
          { length: 50 },
          (_, i) => (c + i + round) % 4 === 0 ? `x${c}` : AORS[(c * 7 + i + round) % AORS.length],
        );
        await client.send(requests.join("\n") + "\n");
        assertEquals(await client.lines(requests.length), requests.map(expected));
      }
      client.close();
    }));
    assertEquals(server.counters.lookups, 40 * 5 * 50);
  });
});

Deno.test("server: an idle connection is closed after the timeout", async () => {
  await withServer({ idleTimeout: 200 }, async (server, port) => {
    const client = await LineClient.connect(port);
    const elapsed = await timed(client.closed());
    client.close();
    assertOk(elapsed >= 190 && elapsed < 1500, `closed after ${elapsed} ms`);
    assertEquals(server.counters.idleClosed, 1);
  });
});

Deno.test("server: activity resets the idle timer", async () => {
  await withServer({ idleTimeout: 300 }, async (server, port) => {
    const client = await LineClient.connect(port);
    // Time is the behaviour under test: a request every 100 ms for 1 s
    // keeps a 300 ms timeout from firing.
    for (let i = 0; i < 10; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await client.send(`${AORS[i]}\n`);
      assertEquals(await client.line(), expected(AORS[i]));
    }
    assertEquals(server.counters.idleClosed, 0);
    const elapsed = await timed(client.closed());
    client.close();
    assertOk(elapsed >= 290 && elapsed < 1500, `closed ${elapsed} ms after the last request`);
  });
});

Deno.test("server: a client dribbling bytes without a newline is closed on time", async () => {
  await withServer({ idleTimeout: 300 }, async (_server, port) => {
    const client = await LineClient.connect(port);
    const start = performance.now();
    let closed = false;
    const done = client.closed().then(() => closed = true);
    for (let i = 0; i < 40 && !closed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      try {
        await client.send("x");
      } catch {
        break; // The server closed it.
      }
    }
    await done;
    const elapsed = performance.now() - start;
    client.close();
    assertOk(elapsed >= 290 && elapsed < 1500, `dribbler closed after ${elapsed} ms`);
  });
});

Deno.test("server: a line over max-line closes only that connection, after earlier answers", async () => {
  await withServer({ maxLine: 1024 }, async (server, port) => {
    const bad = await LineClient.connect(port);
    const good = await LineClient.connect(port);
    await bad.send(`${AORS[7]}\n${"x".repeat(1024)}\n${"y".repeat(1025)}\n${AORS[8]}\n`);
    await good.send(`${AORS[9]}\n`);
    assertEquals(await good.line(), expected(AORS[9]));
    assertEquals(await bad.lines(2), [expected(AORS[7]), ""]);
    assertEquals((await bad.rest()).length, 0);
    await good.send(`${AORS[10]}\n`);
    assertEquals(await good.line(), expected(AORS[10]));
    bad.close();
    good.close();
    assertEquals(server.counters.overlongLines, 1);
  });
});

Deno.test("server: a line over max-line with no newline at all is cut off", async () => {
  await withServer({ maxLine: 1024 }, async (_server, port) => {
    const client = await LineClient.connect(port);
    await client.send("z".repeat(5000)).catch(() => {});
    assertEquals((await client.rest()).length, 0);
    client.close();
  });
});

Deno.test("server: survives a storm of connections reset before accept()", async () => {
  await withServer({}, async (server, port) => {
    const worker = new Worker(new URL("./rst_worker.ts", import.meta.url), { type: "module" });
    try {
      const done = new Promise((resolve) => worker.onmessage = (event) => resolve(event.data));
      worker.postMessage({ port, count: 200, payload: `${AORS[0]}\n`.repeat(50) });
      // Block this event loop so that the resets queue up before accept().
      const until = Date.now() + 400;
      while (Date.now() < until) { /* busy */ }
      assertEquals(await done, 200);
    } finally {
      worker.terminate();
    }
    const client = await LineClient.connect(port);
    await client.send(`${AORS[11]}\n`);
    assertEquals(await client.line(), expected(AORS[11]));
    client.close();
    assertOk(
      server.counters.acceptErrors + server.counters.connectionErrors > 0,
      "resets were seen",
    );
  });
});

Deno.test("server: a new directory is served from the next request on", async () => {
  await withServer({}, async (server, port) => {
    const client = await LineClient.connect(port);
    await client.send(`${AORS[0]}\nnew\n`);
    assertEquals(await client.lines(2), [expected(AORS[0]), ""]);
    server.live.replace(await directoryOf(record("new") + "\n"));
    await client.send(`${AORS[0]}\nnew\n`);
    assertEquals(await client.lines(2), ["", record("new")]);
    client.close();
  });
});

Deno.test("server: shutdown answers what was received, then closes", async () => {
  const server = serve({ directory: await directoryOf(DATA), port: 0 });
  const clients = await Promise.all(
    Array.from({ length: 10 }, () => LineClient.connect(server.addr.port)),
  );
  // One round trip each: the connections are accepted, not just queued.
  for (const client of clients) {
    await client.send("ping\n");
    assertEquals(await client.line(), "");
  }
  const requests = Array.from({ length: 200 }, (_, i) => AORS[i % AORS.length]);
  await Promise.all(clients.map((client) => client.send(requests.join("\n") + "\n")));
  const stopped = server.shutdown(2000);
  for (const client of clients) {
    assertEquals(await client.lines(requests.length), requests.map(expected));
    assertEquals((await client.rest()).length, 0);
    client.close();
  }
  await stopped;
  assertEquals(server.connections, 0);
  // No new connections once stopped.
  let refused = false;
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port })).close();
  } catch {
    refused = true;
  }
  assertOk(refused);
});

Deno.test("server: shutdown closes clients that keep sending between two answers, long before the grace period", async () => {
  const server = serve({ directory: await directoryOf(DATA), port: 0 });
  const clients = await Promise.all(
    Array.from({ length: 8 }, () => LineClient.connect(server.addr.port)),
  );
  let started!: () => void;
  const sending = new Promise<void>((resolve) => started = resolve);
  // Each keeps one request in flight, as a proxy under load does, until the server closes.
  const loops = clients.map(async (client, c) => {
    let answered = 0;
    for (;;) {
      const aor = AORS[(c * 31 + answered) % AORS.length];
      try {
        await client.send(`${aor}\n`);
      } catch {
        break;
      }
      let answer: string;
      try {
        answer = await client.line();
      } catch {
        break;
      }
      // Whole answers only, right up to the end.
      assertEquals(answer, expected(aor));
      if (++answered === 20) started();
    }
    assertEquals((await client.rest()).length, 0);
    client.close();
    return answered;
  });
  await sending;
  const took = await timed(server.shutdown(10_000));
  for (const answered of await Promise.all(loops)) assertOk(answered > 0);
  assertAtMost(took, 2000, "ms to drain busy clients, with 10 000 ms of grace");
  assertEquals(server.connections, 0);
});

Deno.test("server: addresses are written host:port, IPv6 in brackets", () => {
  assertEquals(
    formatAddress({ transport: "tcp", hostname: "10.0.0.1", port: 5060 }),
    "10.0.0.1:5060",
  );
  assertEquals(formatAddress({ transport: "tcp", hostname: "::1", port: 1234 }), "[::1]:1234");
});
