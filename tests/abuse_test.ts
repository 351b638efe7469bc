/**
 * Abuse and faults: limits, hostile bytes, slow and vanishing clients,
 * descriptor exhaustion, signals. Process-level where memory, descriptors or
 * signals are what is measured; the longest runs are in stress/.
 */

import net from "node:net";
import { Buffer } from "node:buffer";
import { assertAtMost, assertEquals, assertOk } from "./assert.ts";
import type { ServeOptions, Server } from "../lib/transport/server.ts";
import {
  assertServes as assertServesData,
  Dataset,
  LineClient,
  record,
  seededRandom,
  SipdirProcess,
  tempFile,
  withServer as withServerOf,
  withSipdir,
} from "./helpers.ts";

const MiB = 1024 * 1024;
const DATASET = new Dataset(2000, 9);
const AORS = DATASET.aors;
const ANSWERS = DATASET.answers;
const DATA = DATASET.text;
const encoder = new TextEncoder();
const answerOf = (request: string) => DATASET.answer(request);
const assertServes = (port: number) => assertServesData(port, DATASET);
const withServer = (
  options: Partial<ServeOptions>,
  fn: (server: Server, port: number) => Promise<void>,
) => withServerOf(DATA, options, fn);
const withProcess = (
  args: string[],
  fn: (sipdir: SipdirProcess, port: number) => Promise<void>,
  options: { shell?: string } = {},
) => withSipdir(DATA, args, fn, options);

Deno.test("abuse 1: a 1 MiB line without newline is cut off early; memory and others unaffected", async () => {
  await withProcess([], async (sipdir, port) => {
    await assertServes(port);
    const before = await sipdir.rss();
    const inBefore = (await sipdir.counters()).bytesIn;
    const other = await LineClient.connect(port);
    const attacker = await LineClient.connect(port);
    const flood = attacker.send(new Uint8Array(MiB).fill(0x41)).catch(() => "cut off");
    await other.send(`${AORS[3]}\n`);
    assertEquals(await other.line(), ANSWERS.get(AORS[3]));
    assertEquals((await attacker.rest()).length, 0);
    await flood;
    attacker.close();
    await other.send(`${AORS[4]}\n`);
    assertEquals(await other.line(), ANSWERS.get(AORS[4]));
    other.close();
    const counters = await sipdir.counters();
    // Closed after max-line plus at most one read buffer (64 KiB).
    assertAtMost(
      counters.bytesIn - inBefore,
      1024 + 64 * 1024 + 200,
      "bytes read from the attacker",
    );
    assertEquals(counters.overlongLines, 1);
    assertAtMost((await sipdir.rss()) - before, 4 * MiB, "RSS growth");
  });
});

Deno.test("abuse 2: max-line boundary: 1024 bytes are answered, 1025 close", async () => {
  await withServer({}, async (_server, port) => {
    const ok = await LineClient.connect(port);
    await ok.send(`${"a".repeat(1024)}\n${"b".repeat(1024)}\r\n${" ".repeat(994)}${AORS[0]}\n`);
    assertEquals(await ok.lines(3), ["", "", ANSWERS.get(AORS[0])]);
    ok.close();
    const over = await LineClient.connect(port);
    await over.send(`${AORS[6]}\n${"c".repeat(1025)}\n${AORS[7]}\n`);
    assertEquals(await over.lines(1), [ANSWERS.get(AORS[6])]);
    assertEquals((await over.rest()).length, 0);
    over.close();
    const overCrlf = await LineClient.connect(port);
    await overCrlf.send(`${"d".repeat(1025)}\r\n`);
    assertEquals((await overCrlf.rest()).length, 0);
    overCrlf.close();
  });
});

Deno.test("abuse 3: garbage bytes get exactly one (empty) answer per line", async () => {
  const log = await Deno.makeTempFile();
  await withProcess(["-v", "-l", log], async (_sipdir, port) => {
    const garbage = [
      new Uint8Array([0]),
      new Uint8Array([0xff, 0xfe, 0xfd]),
      new Uint8Array([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28]),
      encoder.encode("a\rb"),
      encoder.encode("\r\r"),
      encoder.encode("\x1b[2J\x1b]0;pwned\x07"),
      encoder.encode("%s%n%x{}\\\"'"),
      encoder.encode("\u202e\ufeff\u{1F600}"),
      new Uint8Array([0x7f, 0x08, 0x08]),
    ];
    const client = await LineClient.connect(port);
    const parts: number[] = [];
    for (const g of garbage) parts.push(...g, 0x0a);
    parts.push(...encoder.encode(`${AORS[8]}\n`));
    await client.send(new Uint8Array(parts));
    assertEquals(await client.lines(garbage.length + 1), [
      ...garbage.map(() => ""),
      ANSWERS.get(AORS[8]),
    ]);
    client.close();
    await assertServes(port);
  });
  const text = await Deno.readTextFile(log);
  await Deno.remove(log);
  assertOk(!text.includes("\x1b"), "escape sequences reach the log file");
  assertEquals(text.split("\n").filter((l) => l.endsWith(" miss")).length >= 9, true);
});

Deno.test("abuse 4: fuzz: 100 000 random byte lines mixed with real AORs", async () => {
  await withProcess([], async (sipdir, port) => {
    const next = seededRandom(4);
    const lines: Uint8Array[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      if (i % 10 === 0) {
        const aor = AORS[Math.floor(next() * AORS.length)];
        lines.push(encoder.encode(aor));
        expected.push(ANSWERS.get(aor)!);
        continue;
      }
      const line = new Uint8Array(Math.floor(next() * 65));
      for (let j = 0; j < line.length; j++) {
        let b = Math.floor(next() * 256);
        if (b === 0x0a) b = 0x0b;
        line[j] = b;
      }
      lines.push(line);
      expected.push("");
    }
    const stream = new Uint8Array(lines.reduce((n, l) => n + l.length + 1, 0));
    let o = 0;
    for (const line of lines) {
      stream.set(line, o);
      o += line.length;
      stream[o++] = 0x0a;
    }
    const client = await LineClient.connect(port);
    const answers = client.lines(expected.length);
    await client.send(stream);
    const got = await answers;
    client.close();
    assertEquals(got.length, expected.length);
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== expected[i]) assertEquals(got[i], expected[i], `line ${i}`);
    }
    await assertServes(port);
    assertEquals((await sipdir.counters()).lookups >= 100_000, true);
  });
});

Deno.test("abuse 5: 100 000 pipelined lookups in one write, 1-byte writes, random splits", async () => {
  await withServer({}, async (_server, port) => {
    const next = seededRandom(5);
    const requests = Array.from({ length: 100_000 }, (_, i) => {
      const aor = AORS[Math.floor(next() * AORS.length)];
      return i % 7 === 0 ? `  ${aor}\t\r` : i % 11 === 0 ? `missing${i}` : aor;
    });
    const text = requests.map((r) => r + "\n").join("");
    const expected = requests.map(answerOf);

    // All in one write.
    const one = await LineClient.connect(port);
    const oneAnswers = one.lines(requests.length);
    await one.send(text);
    const got = await oneAnswers;
    one.close();
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== expected[i]) assertEquals(got[i], expected[i], `#${i}`);
    }

    // One byte per write, for the first 300 requests.
    const small = requests.slice(0, 300);
    const bytewise = await LineClient.connect(port);
    bytewise.conn.setNoDelay(true);
    const smallText = encoder.encode(small.map((r) => r + "\n").join(""));
    const bytewiseAnswers = bytewise.lines(small.length);
    for (let i = 0; i < smallText.length; i++) await bytewise.send(smallText.subarray(i, i + 1));
    assertEquals(await bytewiseAnswers, expected.slice(0, 300));
    bytewise.close();

    // Random splits.
    const all = encoder.encode(text);
    const split = await LineClient.connect(port);
    split.conn.setNoDelay(true);
    const splitAnswers = split.lines(requests.length);
    for (let pos = 0; pos < all.length;) {
      const n = 1 + Math.floor(next() * 3000);
      await split.send(all.subarray(pos, pos + n));
      pos += n;
    }
    const splitGot = await splitAnswers;
    split.close();
    for (let i = 0; i < splitGot.length; i++) {
      if (splitGot[i] !== expected[i]) assertEquals(splitGot[i], expected[i], `#${i}`);
    }
  });
});

Deno.test("abuse 6: a client that sends 20 MiB and never reads is bounded and closed", async () => {
  await withProcess(["--timeout", "2"], async (sipdir, port) => {
    await assertServes(port);
    const before = await sipdir.rss();
    let peak = before;
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const batch = encoder.encode(AORS.slice(0, 1000).join("\n") + "\n");
    let lastProgress = performance.now();
    let closedAt = 0;
    // Writes stall once the server stops reading (its answers are not read);
    // it must then close the connection within the timeout.
    const writer = (async () => {
      try {
        for (let sent = 0; sent < 20 * MiB;) {
          sent += await conn.write(batch);
          lastProgress = performance.now();
        }
        // Everything fitted in the buffers: wait for the close by writing on.
        for (;;) await conn.write(batch.subarray(0, 1));
      } catch {
        closedAt = performance.now();
      }
    })();
    while (closedAt === 0) {
      await assertServes(port);
      peak = Math.max(peak, await sipdir.rss());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await writer;
    conn.close();
    assertAtMost(closedAt - lastProgress, 2000 + 3000, "ms from stalling to being closed");
    assertAtMost(peak - before, 64 * MiB, "RSS growth");
    await assertServes(port);
    assertEquals((await sipdir.counters()).idleClosed, 1);
  });
});

Deno.test("abuse 8: max-clients: the extra client is closed at once; a freed slot is reused", async () => {
  await withServer({ maxClients: 50 }, async (server, port) => {
    const clients = await Promise.all(Array.from({ length: 50 }, () => LineClient.connect(port)));
    for (const client of clients) {
      await client.send(`${AORS[9]}\n`);
      assertEquals(await client.line(), ANSWERS.get(AORS[9]));
    }
    const extra = await LineClient.connect(port);
    const start = performance.now();
    await extra.closed();
    assertAtMost(performance.now() - start, 500, "ms until the 51st is closed");
    extra.close();
    assertEquals(server.counters.rejected, 1);
    // Free a slot: once our EOF comes back, the server has let it go.
    await clients[0].closeWrite();
    await clients[0].closed();
    clients[0].close();
    const again = await LineClient.connect(port);
    await again.send(`${AORS[10]}\n`);
    assertEquals(await again.line(), ANSWERS.get(AORS[10]));
    again.close();
    for (const client of clients.slice(1)) {
      await client.send(`${AORS[11]}\n`);
      assertEquals(await client.line(), ANSWERS.get(AORS[11]));
      client.close();
    }
  });
});

Deno.test({
  name:
    "abuse 9: out of descriptors (ulimit -n 256, 400 clients): stays up, serves once they leave",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    await withProcess([], async (sipdir, port) => {
      const settled: Deno.TcpConn[] = [];
      const attempts = Array.from(
        { length: 400 },
        () =>
          Deno.connect({ hostname: "127.0.0.1", port }).then((conn) => {
            settled.push(conn);
            return conn;
          }, () => undefined),
      );
      // Connections past the backlog wait on SYN retries; do not wait for them all.
      await Promise.race([Promise.allSettled(attempts), new Promise((r) => setTimeout(r, 3000))]);
      assertOk(settled.length > 200, `${settled.length} connected`);
      await sipdir.waitFor(
        /accept failed \d+ time\(s\), backing off: .*(EMFILE|Too many open files)/,
      );
      for (const conn of settled.splice(0)) conn.close();
      // Late ones are closed as they come.
      for (const attempt of attempts) attempt.then((conn) => conn?.close()).catch(() => {});
      const left = performance.now();
      for (;;) {
        try {
          await assertServes(port);
          break;
        } catch (error) {
          if (performance.now() - left > 1500) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      assertAtMost(performance.now() - left, 1500, "ms until served after the others left");
      assertOk((await sipdir.counters()).acceptErrors > 0);
    }, { shell: "ulimit -n 256" });
  },
});

Deno.test("abuse 11: a reset in the middle of a large answer stream is survived and counted", async () => {
  await withServer({}, async (server, port) => {
    const requests = Array.from({ length: 20_000 }, (_, i) => AORS[i % AORS.length]).join("\n") +
      "\n";
    await new Promise<void>((resolve, reject) => {
      let received = 0;
      const socket = net.connect(port, "127.0.0.1", () => socket.write(requests));
      socket.on("data", (data: Buffer) => {
        received += data.length;
        if (received > 256 * 1024) {
          socket.resetAndDestroy();
          resolve();
        }
      });
      socket.on("error", reject);
    });
    await assertServes(port);
    assertEquals(server.counters.connectionErrors >= 1, true);
  });
});

Deno.test("abuse 13: SIGTERM with 100 connections and 2000 requests in flight answers all, exit 0", async () => {
  const data = await tempFile(DATA);
  const sipdir = await SipdirProcess.start(["-d", data, "-p", "0"]);
  try {
    const port = await sipdir.port();
    const clients = await Promise.all(Array.from({ length: 100 }, () => LineClient.connect(port)));
    for (const client of clients) {
      await client.send("hello\n");
      assertEquals(await client.line(), "");
    }
    const requests = clients.map((_, c) =>
      Array.from({ length: 20 }, (_, i) => AORS[(c * 20 + i) % AORS.length])
    );
    await Promise.all(clients.map((client, c) => client.send(requests[c].join("\n") + "\n")));
    const signalled = performance.now();
    sipdir.kill("SIGTERM");
    let answered = 0;
    await Promise.all(clients.map(async (client, c) => {
      const got = await client.lines(20);
      assertEquals(got, requests[c].map((aor) => ANSWERS.get(aor)));
      answered += got.length;
      await client.closed();
      client.close();
    }));
    const { code } = await sipdir.exit();
    assertEquals(answered, 2000);
    assertEquals(code, 0);
    assertAtMost(performance.now() - signalled, 2500, "ms from SIGTERM to exit");
  } finally {
    sipdir.kill("SIGKILL");
    await Deno.remove(data);
  }
});

Deno.test("abuse 14: SIGHUP under load swaps the data atomically; a bad file keeps the old", async () => {
  const hot = AORS[12];
  const fresh = "0000000000newcomer0000000000000";
  const v1 = DATA;
  const v2 = DATA.replace(ANSWERS.get(hot)!, record(hot, { version: 2 })) + record(fresh) + "\n";
  const path = await tempFile(v1);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"]);
  const replace = async (content: string) => {
    // As operators should: write beside, then rename over.
    await Deno.writeTextFile(`${path}.new`, content);
    await Deno.rename(`${path}.new`, path);
  };
  try {
    const port = await sipdir.port();
    const client = await LineClient.connect(port);
    const allowedHot = new Set([ANSWERS.get(hot)!, record(hot, { version: 2 })]);
    const allowedFresh = new Set(["", record(fresh)]);
    let stop = false;
    let batches = 0;
    let sawNew = 0;
    const batch = Array.from({ length: 50 }, (_, i) => i % 2 ? hot : fresh).join("\n") + "\n";
    const load = (async () => {
      while (!stop) {
        await client.send(batch);
        const got = await client.lines(50);
        got.forEach((line, i) => {
          const allowed = i % 2 ? allowedHot : allowedFresh;
          if (!allowed.has(line)) throw new Error(`torn or wrong answer: ${line.slice(0, 80)}`);
          if (i % 2 && line === record(hot, { version: 2 }) && sawNew === 0) {
            sawNew = performance.now();
          }
        });
        batches++;
      }
    })();
    while (batches < 20) await new Promise((resolve) => setTimeout(resolve, 10));
    await replace(v2);
    const hupAt = performance.now();
    sipdir.kill("SIGHUP");
    await sipdir.waitFor(/reloaded .*: \d+ entries/);
    while (sawNew === 0 && performance.now() - hupAt < 5000) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertOk(sawNew > 0, "new data never served");
    assertAtMost(sawNew - hupAt, 1000, "ms until the new data is served");

    await replace(v2 + '{"addressOfRecord": 7}\n');
    const from = sipdir.stderr.length;
    sipdir.kill("SIGHUP");
    const failed = await sipdir.waitFor(
      /reload failed, still serving the previous data: (.*)/,
      20_000,
      from,
    );
    assertOk(failed[1].includes(`${path}:2002: "addressOfRecord" must be a string`), failed[1]);
    const before = batches;
    while (batches < before + 20) await new Promise((resolve) => setTimeout(resolve, 10));
    stop = true;
    await load;
    client.close();
    const check = await LineClient.connect(port);
    await check.send(`${hot}\n${fresh}\n`);
    assertEquals(await check.lines(2), [record(hot, { version: 2 }), record(fresh)]);
    check.close();
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
});

Deno.test("abuse 15: a client flooding pipelined requests, reading every reply, does not hold up others", async () => {
  await withProcess([], async (_sipdir, port) => {
    // The flood: a megabyte of requests after another, as fast as the
    // socket takes them, its replies read as fast as they come, so that
    // sipdir always has more of it to read and nothing stops it writing.
    const flood = await Deno.connect({ hostname: "127.0.0.1", port });
    const requests = encoder.encode("nobody\n".repeat(150_000));
    let flooding = true;
    let replies = 0;
    const writing = (async () => {
      while (flooding) await flood.write(requests);
    })().catch(() => {});
    const reading = (async () => {
      const buf = new Uint8Array(1 << 20);
      for (;;) {
        const n = await flood.read(buf);
        if (n === null) return;
        replies += n;
      }
    })().catch(() => {});
    while (replies < 1_000_000) await new Promise((resolve) => setTimeout(resolve, 10));

    // Meanwhile a proxy's connection, one lookup at a time, is answered as usual.
    const proxy = await LineClient.connect(port);
    const waits: number[] = [];
    for (let i = 0; i < 200; i++) {
      const start = performance.now();
      await proxy.send(`${AORS[i]}\n`);
      assertEquals(await proxy.line(), ANSWERS.get(AORS[i]));
      waits.push(performance.now() - start);
    }
    proxy.close();
    const before = replies;
    while (replies === before) await new Promise((resolve) => setTimeout(resolve, 10));
    flooding = false;
    flood.close();
    await Promise.all([writing, reading]);
    waits.sort((a, b) => a - b);
    console.log(
      `  lookups beside the flood: median ${waits[100].toFixed(2)} ms, max ${
        waits[199].toFixed(2)
      } ms; the flood got ${(replies / 1e6).toFixed(1)} M replies`,
    );
    assertAtMost(waits[100], 50, "median ms of a lookup beside the flood");
    assertAtMost(waits[199], 500, "longest ms of a lookup beside the flood");
  });
});
