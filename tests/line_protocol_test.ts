/**
 * The line protocol by bytes in and bytes out, with no socket: every way a
 * connection can cut its input into reads must give the same replies.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { Changes } from "../lib/directory/changes.ts";
import { ProtocolCounters } from "../lib/operations/counters.ts";
import { LineProtocol } from "../lib/protocol/line.ts";
import { Output, OutputPool } from "../lib/transport/output.ts";
import { exchange } from "../testing/protocol_harness.ts";
import { directoryOf, record } from "./helpers.ts";

const A = record("a1", { n: 1 });
const B = record("b2", { n: 2 });
const directory = await directoryOf(`${A}\n${B}\n`);
const protocol = new LineProtocol({ maxLine: 16 });
const run = (input: string, options: Parameters<typeof exchange>[2] = {}) =>
  exchange(protocol, input, { directory, ...options });

Deno.test("line protocol: hits, misses, empty lines, CRLF and trimming, in order", async () => {
  const { output, counters, closed } = await run("a1\nzz\n\n  b2 \t\r\na1\r\n");
  assertEquals(output, `${A}\n\n\n${B}\n${A}\n`);
  assertEquals([counters.lookups, counters.hits, counters.misses], [5, 3, 2]);
  assertEquals(closed, "");
});

Deno.test("line protocol: every split point of a pipelined read gives the same replies", async () => {
  const input = "a1\r\nzz\n  b2\t\r\n\na1\nb2";
  const whole = (await run(input)).output;
  assertEquals(whole, `${A}\n\n${B}\n\n${A}\n${B}\n`);
  for (let cut = 0; cut <= input.length; cut++) {
    assertEquals((await run(input, { cuts: [cut] })).output, whole, `cut at ${cut}`);
  }
  for (let a = 0; a <= input.length; a += 2) {
    for (let b = a; b <= input.length; b += 3) {
      assertEquals((await run(input, { cuts: [a, b] })).output, whole, `cuts ${a}, ${b}`);
    }
  }
  const bytewise = Array.from({ length: input.length }, (_, i) => i);
  assertEquals((await run(input, { cuts: bytewise })).output, whole);
});

Deno.test("line protocol: a last line without LF waits, and is answered at half-close", async () => {
  const open = await run("a1\nb2", { eof: false });
  assertEquals([open.output, open.consumed], [`${A}\n`, 3]);
  assertEquals((await run("a1\nb2")).output, `${A}\n${B}\n`);
  assertEquals((await run("a1\nb2\r")).output, `${A}\n${B}\n`);
});

Deno.test("line protocol: a line over max-line closes after the answers before it", async () => {
  const exact = await run(`${"x".repeat(16)}\na1\n`);
  assertEquals([exact.output, exact.closed], [`\n${A}\n`, ""]);
  const crlf = await run(`${"x".repeat(16)}\r\na1\n`);
  assertEquals([crlf.output, crlf.closed], [`\n${A}\n`, ""]);
  const over = await run(`a1\n${"x".repeat(17)}\nb2\n`);
  assertEquals(over.output, `${A}\n`);
  assertEquals(over.closed, "request line over 16 bytes");
  assertEquals(over.counters.protocolErrors, 1);
  // Cut off before its end arrives, and at half-close without LF.
  assertEquals(
    (await run(`a1\n${"y".repeat(40)}`, { eof: false })).closed,
    "request line over 16 bytes",
  );
  assertEquals((await run(`${"y".repeat(17)}`)).closed, "request line over 16 bytes");
});

Deno.test("line protocol: replies stop at max-pending and resume where they stopped", async () => {
  const input = "a1\nb2\n".repeat(50);
  const { output, writes } = await run(input, { maxPending: 3 * A.length });
  assertEquals(output, `${A}\n${B}\n`.repeat(50));
  assertOk(writes >= 25, `${writes} writes`);
});

Deno.test("line protocol: one request per read is one write of the stored answer", async () => {
  const { output, writes } = await run("a1\nb2\nzz\n", { cuts: [3, 6] });
  assertEquals([output, writes], [`${A}\n${B}\n\n`, 3]);
  const batched = await run("a1\nb2\nzz\n");
  assertEquals([batched.output, batched.writes], [`${A}\n${B}\n\n`, 1]);
});

Deno.test("line protocol: bare requests end at a pause until the client sends a line end", async () => {
  // Two bare requests; then the LF that follows completes the second, late
  // (a lost segment retransmitted after the pause): no answer of its own,
  // and the client is a line client from there on.
  const input = "a1b2\n zz\nb2\n";
  const bare = await run(input, { pauses: [2, 4] });
  assertEquals(bare.output, `${A}\n${B}\n\n${B}\n`);
  // The same with CRLF, the CR and the LF in two reads.
  const crlf = await run("b2\r\na1\n", { pauses: [2], cuts: [3] });
  assertEquals(crlf.output, `${B}\n${A}\n`);
  // Anything but a line end after a bare answer is a request of its own.
  const next = await run("b2a1\n", { pauses: [2] });
  assertEquals(next.output, `${B}\n${A}\n`);
  // After a line end, a pause inside a line cuts nothing.
  const lines = await run("a1\nb", { pauses: [3, 4], eof: false });
  assertEquals([lines.output, lines.consumed], [`${A}\n`, 3]);
  // A bare request over max-line closes, as a line would.
  assertEquals(
    (await run("y".repeat(17), { pauses: [17], eof: false })).closed,
    "request line over 16 bytes",
  );
  // Off: a pause completes nothing.
  const off = await exchange(new LineProtocol({ maxLine: 16, bareWait: 0 }), "a1", {
    directory,
    pauses: [2],
    eof: false,
  });
  assertEquals(off.output, "");
});

Deno.test("line protocol: a changed registration answered alone is sent as it was, whatever changes come while it is written", async () => {
  const encoder = new TextEncoder();
  const changed = await directoryOf(`${A}\n`);
  const changes = changed.changes = new Changes(changed);
  const put = (aor: string, fields: Record<string, unknown>) => {
    const key = encoder.encode(aor);
    const answer = encoder.encode(record(aor, fields));
    changes.put(key, 0, key.length, answer, 0, answer.length);
  };
  // Enough changes first that chunks are full-sized (1 MiB), as they are once changes pile up.
  const filler = "y".repeat(2000);
  for (let i = 0; i < 2000; i++) put(`k${i % 1000}`, { v: i, filler });
  put("x", { v: 0 });
  const output = new Output(
    new OutputPool(),
    new ProtocolCounters("line"),
    1 << 20,
    false,
    () => "127.0.0.1:40000",
  );
  output.directory = changed;
  const request = encoder.encode("x\n");
  new LineProtocol().answer(new LineProtocol().createState(), request, 0, 2, false, output);
  // What the connection writes; a slow client keeps it pending across many turns.
  const pending = output.bytes();
  // x changes again, among 40 MB of changes to a thousand AORs: chunks emptied by compaction
  // take new changes.
  for (let i = 0; i < 20_000; i++) put(i % 1000 === 0 ? "x" : `k${i % 1000}`, { v: i, filler });
  assertEquals(new TextDecoder().decode(pending), `${record("x", { v: 0 })}\n`);
});
