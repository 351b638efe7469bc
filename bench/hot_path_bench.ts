/**
 * Micro-benchmarks of what each request and each loaded line costs:
 * `deno task bench`.
 *
 * @module
 */

import { hashBytes } from "../lib/directory/directory.ts";
import { LINE_TOO_LONG, LineFramer, NO_LINE } from "../lib/protocol/line_framer.ts";
import { loadDirectory } from "../lib/loading/load.ts";
import { ProtocolCounters } from "../lib/operations/counters.ts";
import { LineProtocol } from "../lib/protocol/line.ts";
import { RedisProtocol } from "../lib/protocol/redis/redis.ts";
import type { Protocol } from "../lib/protocol/protocol.ts";
import { Output, OutputPool } from "../lib/transport/output.ts";
import { RecordScanner } from "../lib/loading/record.ts";
import { generateRegistrations, seededRandom } from "../testing/gen_regs.ts";

const encoder = new TextEncoder();
const COUNT = 100_000;
const generated = [...generateRegistrations({ count: COUNT, duplicates: 0 })];
const dumpText = generated.map((g) => g.line).join("\n") + "\n";
const dumpPath = await Deno.makeTempFile({ prefix: "sipdir-bench-" });
await Deno.writeTextFile(dumpPath, dumpText);
const { directory } = await loadDirectory({ path: dumpPath });
const dump = encoder.encode(dumpText);

// 1000 pipelined requests, one in ten for an unknown AOR, as one read would bring them.
const requestText = Array.from(
  { length: 1000 },
  (_, i) => i % 10 === 0 ? `unknown${i}\n` : `${generated[(i * 7919) % COUNT].aor}\n`,
).join("");
const requests = encoder.encode(requestText);
const framer = new LineFramer(1024);
const out = new Uint8Array(2 * 1024 * 1024);

Deno.bench("frame 1000 pipelined request lines", { group: "request" }, () => {
  let pos = 0;
  let lines = 0;
  for (;;) {
    const next = framer.next(requests, pos, requests.length);
    if (next === NO_LINE || next === LINE_TOO_LONG) break;
    lines++;
    pos = next;
  }
  if (lines !== 1000) throw new Error(`${lines} lines`);
});

Deno.bench("frame + look up 1000 requests", { group: "request" }, () => {
  let pos = 0;
  let hits = 0;
  for (;;) {
    const next = framer.next(requests, pos, requests.length);
    if (next < 0) break;
    if (directory.find(requests, framer.start, framer.end) >= 0) hits++;
    pos = next;
  }
  if (hits !== 900) throw new Error(`${hits} hits`);
});

// The real protocol code, with the transport's real output buffer, as a
// session runs it for one read: 16 pipelined requests (a client with 16 in
// flight), and a burst of 1000 (the output buffer grows past the pool's size).
const protocol = new LineProtocol();
const lineState = protocol.createState();
const output = new Output(new OutputPool(), new ProtocolCounters("line"), 1 << 30, false, () => "");
const sixteen = encoder.encode(requestText.split("\n").slice(0, 16).join("\n") + "\n");
Deno.bench("line protocol: answer a read of 16 pipelined requests", {
  group: "read",
  baseline: true,
}, () => {
  output.directory = directory;
  const pos = protocol.answer(lineState, sixteen, 0, sixteen.length, false, output);
  if (pos !== sixteen.length || output.length < 5000) throw new Error(`${output.length} bytes`);
  output.reset();
});

// The same, for AORs all over the directory's 65 MB, as a busy server sees
// them: each read finds its registrations out of the CPU's caches.
const shuffled = generated.map((g) => g.aor);
const random = seededRandom(16);
for (let i = shuffled.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
}
const coldReads: Uint8Array[] = [];
for (let i = 0; i + 16 <= shuffled.length; i += 16) {
  coldReads.push(encoder.encode(shuffled.slice(i, i + 16).join("\n") + "\n"));
}
/** Benchmarks `protocol` answering `reads` in turn, each whole, with over 5000 bytes of replies. */
function benchReads<S>(name: string, protocol: Protocol<S>, state: S, reads: Uint8Array[]): void {
  let next = 0;
  Deno.bench(name, { group: "read" }, () => {
    const read = reads[next++ % reads.length];
    output.directory = directory;
    const pos = protocol.answer(state, read, 0, read.length, false, output);
    if (pos !== read.length || output.length < 5000) throw new Error(`${output.length} bytes`);
    output.reset();
  });
}

benchReads(
  "line protocol: answer a read of 16 requests, AORs spread over 65 MB",
  protocol,
  lineState,
  coldReads,
);

// The Redis port with the same AORs: GET commands as client libraries send
// them (multibulk) and as typed (inline), 16 to a read.
const redis = new RedisProtocol({
  info: { version: "0", connectedClients: () => 0, uptimeSeconds: () => 0, port: () => 0 },
});
const redisState = redis.createState();
const getReads = (inline: boolean) =>
  coldReads.map((_, i) =>
    encoder.encode(
      shuffled.slice(i * 16, i * 16 + 16).map((aor) =>
        inline ? `GET ${aor}\r\n` : `*2\r\n$3\r\nGET\r\n$${aor.length}\r\n${aor}\r\n`
      ).join(""),
    )
  );
for (const [form, reads] of [["multibulk", getReads(false)], ["inline", getReads(true)]] as const) {
  benchReads(
    `redis protocol: answer a read of 16 ${form} GETs, AORs spread over 65 MB`,
    redis,
    redisState,
    reads,
  );
}

Deno.bench(
  "hand-written loop: frame, look up, copy a read of 16 requests",
  { group: "read" },
  () => {
    let pos = 0;
    let o = 0;
    for (;;) {
      const next = framer.next(sixteen, pos, sixteen.length);
      if (next < 0) break;
      const id = directory.find(sixteen, framer.start, framer.end);
      if (id < 0) out[o++] = 0x0a;
      else {
        const answer = directory.answer(id);
        out.set(answer, o);
        o += answer.length;
      }
      pos = next;
    }
    if (o < 5000) throw new Error(`${o} bytes`);
  },
);

Deno.bench("line protocol: answer a burst of 1000 pipelined requests", { group: "request" }, () => {
  output.directory = directory;
  const pos = protocol.answer(lineState, requests, 0, requests.length, false, output);
  if (pos !== requests.length || output.length < 500_000) throw new Error(`${output.length} bytes`);
  output.reset();
});

const oneRequest = encoder.encode(`${generated[42].aor}\n`);
Deno.bench("line protocol: answer one request (a lone answer, no copy)", {
  group: "read",
}, () => {
  output.directory = directory;
  protocol.answer(lineState, oneRequest, 0, oneRequest.length, false, output);
  if (output.single === null) throw new Error("not a lone answer");
  output.reset();
});

Deno.bench("hash one 30-byte AOR", { group: "request" }, () => {
  hashBytes(requests, 11, 41);
});

const scanner = new RecordScanner();
const firstLine = encoder.encode(generated[1].line);
Deno.bench("validate one registration line (~650 bytes)", { group: "load" }, () => {
  if (!scanner.scan(firstLine, 0, firstLine.length)) throw new Error(scanner.error);
});

Deno.bench(
  `validate ${COUNT} lines (${(dump.length / 1e6).toFixed(0)} MB)`,
  { group: "load" },
  () => {
    let pos = 0;
    while (pos < dump.length) {
      if (!scanner.scan(dump, pos, dump.length)) throw new Error(scanner.error);
      pos = scanner.lineEnd + 1;
    }
  },
);

Deno.bench(`load ${COUNT} registrations from a file`, { group: "load", n: 5 }, async () => {
  await loadDirectory({ path: dumpPath });
});

globalThis.addEventListener("unload", () => Deno.removeSync(dumpPath));
