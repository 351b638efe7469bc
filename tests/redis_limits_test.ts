/**
 * The Redis protocol against hostile input, by bytes in and bytes out:
 * patterns that would make a backtracking matcher run for ever, commands
 * that never end, queues that never execute, replies that quote line ends.
 * Every bound holds as the command arrives, not when it ends.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { globMatch } from "../lib/protocol/redis/glob.ts";
import { RedisProtocol, type RedisState } from "../lib/protocol/redis/redis.ts";
import { ProtocolCounters } from "../lib/operations/counters.ts";
import { Output, OutputPool } from "../lib/transport/output.ts";
import { exchange } from "../testing/protocol_harness.ts";
import { concat, latin1 } from "../testing/bytes.ts";
import { directoryOf, record, seededRandom } from "./helpers.ts";

const V1 = record("k1", { v: 1 });
const directory = await directoryOf(`${V1}\n`);
const info = { version: "1", connectedClients: () => 1, uptimeSeconds: () => 1, port: () => 1 };
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function cmd(...args: (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes = typeof arg === "string" ? encoder.encode(arg) : arg;
    parts.push(encoder.encode(`$${bytes.length}\r\n`), bytes, encoder.encode("\r\n"));
  }
  return concat(parts);
}

/**
 * Redis's `stringmatchlen` as written in C, recursion and all: the
 * reference the linear matcher must agree with.
 */
function referenceMatch(p: Uint8Array, s: Uint8Array, nocase: boolean): boolean {
  const lower = (c: number) => (nocase && c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  const match = (pi: number, si: number): boolean => {
    while (pi < p.length && si < s.length) {
      const c = p[pi];
      if (c === 0x2a) {
        while (pi + 1 < p.length && p[pi + 1] === 0x2a) pi++;
        if (pi + 1 === p.length) return true;
        for (let k = si; k < s.length; k++) if (match(pi + 1, k)) return true;
        return false;
      } else if (c === 0x3f) {
        si++;
      } else if (c === 0x5b) {
        pi++;
        const not = pi < p.length && p[pi] === 0x5e;
        if (not) pi++;
        let found = false;
        for (;;) {
          if (pi < p.length && p[pi] === 0x5c && pi + 1 < p.length) {
            pi++;
            if (p[pi] === s[si]) found = true;
          } else if (pi >= p.length || p[pi] === 0x5d) {
            if (pi >= p.length) pi--;
            break;
          } else if (pi + 2 < p.length && p[pi + 1] === 0x2d) {
            let start = p[pi];
            let end = p[pi + 2];
            if (start > end) [start, end] = [end, start];
            start = lower(start);
            end = lower(end);
            const c2 = lower(s[si]);
            pi += 2;
            if (c2 >= start && c2 <= end) found = true;
          } else if (lower(p[pi]) === lower(s[si])) {
            found = true;
          }
          pi++;
        }
        if (found === not) return false;
        si++;
      } else {
        if (c === 0x5c && pi + 1 < p.length) pi++;
        if (lower(p[pi]) !== lower(s[si])) return false;
        si++;
      }
      pi++;
      if (si === s.length) {
        while (pi < p.length && p[pi] === 0x2a) pi++;
        break;
      }
    }
    return pi === p.length && si === s.length;
  };
  return match(0, 0);
}

Deno.test("redis limits: CONFIG GET patterns match as Redis's glob does, in linear time", async () => {
  const random = seededRandom(21);
  const alphabet = "ab*?[]^-\\SA";
  const names = ["", "a", "ab", "ba", "abab", "save", "aB-]", "[b]", "A\\"].map((n) =>
    encoder.encode(n)
  );
  for (let i = 0; i < 20_000; i++) {
    let pattern = "";
    const length = Math.floor(random() * 8);
    for (let j = 0; j < length; j++) pattern += alphabet[Math.floor(random() * alphabet.length)];
    const p = encoder.encode(pattern);
    for (const name of names) {
      assertEquals(
        globMatch(p, name, true),
        referenceMatch(p, name, true),
        `${pattern} on ${decoder.decode(name)}`,
      );
    }
  }
  // 40 stars and an x: exponential for a backtracking matcher (CVE-2022-36021).
  const started = performance.now();
  const { output } = await exchange(
    new RedisProtocol({ info }),
    concat([
      cmd("CONFIG", "GET", "*".repeat(40) + "x"),
      cmd("CONFIG", "GET", "*a*a*a*a*a*a*a*a*a*b"),
    ]),
    { directory },
  );
  assertEquals(output, "*0\r\n*0\r\n");
  const huge = "*?".repeat(30_000) + "[" + "a".repeat(1000);
  await exchange(new RedisProtocol({ info, maxArgument: 70_000 }), cmd("CONFIG", "GET", huge), {
    directory,
  });
  assertOk(performance.now() - started < 2000, `${performance.now() - started} ms`);
  // A plain name is named back as sent; a pattern's match as it is known.
  const named = await exchange(
    new RedisProtocol({ info }),
    concat([cmd("CONFIG", "GET", "SAVE"), cmd("CONFIG", "GET", "DATA*")]),
    { directory },
  );
  assertEquals(
    named.output,
    "*2\r\n$4\r\nSAVE\r\n$0\r\n\r\n*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n",
  );
});

Deno.test("redis limits: errors that quote the client turn its line ends into spaces, byte for byte", async () => {
  const input = concat([
    cmd("FOOBAR", "x\r\n:1"),
    cmd("PING"),
    cmd("NAME\nX", new Uint8Array([0x61, 0xff, 0xfe, 0x0d, 0x62]), "c\0d"),
    encoder.encode('FOO "a\\r\\nb"\r\n'),
    cmd("CLIENT", "a\r\nb"),
    cmd("HELLO", "3", "x\ny"),
    encoder.encode("*1\r\n\r"),
  ]);
  const { bytes } = await exchange(new RedisProtocol({ info }), input, { directory, eof: false });
  const expected = concat([
    encoder.encode("-ERR unknown command 'FOOBAR', with args beginning with: 'x  :1' \r\n"),
    encoder.encode("+PONG\r\n"),
    encoder.encode("-ERR unknown command 'NAME X', with args beginning with: 'a"),
    new Uint8Array([0xff, 0xfe, 0x20, 0x62]),
    encoder.encode("' 'c' \r\n"),
    encoder.encode("-ERR unknown command 'FOO', with args beginning with: 'a  b' \r\n"),
    encoder.encode("-ERR unknown subcommand 'a  b'. Try CLIENT HELP.\r\n"),
    encoder.encode("-ERR Syntax error in HELLO option 'x y'\r\n"),
  ]);
  assertEquals(latin1(bytes), latin1(expected));
  // A line end as the byte after `$`: still one reply line.
  const dollar = await exchange(new RedisProtocol({ info }), "*1\r\n\n\r\n", {
    directory,
    eof: false,
  });
  assertEquals(dollar.output, "-ERR Protocol error: expected '$', got ' '\r\n");
});

/** Feeds `chunks` to one connection; returns the replies and the most memory its commands held. */
function feed(protocol: RedisProtocol, chunks: Iterable<Uint8Array>) {
  const state: RedisState = protocol.createState();
  const counters = new ProtocolCounters("redis");
  const out = new Output(new OutputPool(), counters, 1 << 20, false, () => "test");
  let replies = "";
  let most = 0;
  let pending = new Uint8Array(0);
  for (const chunk of chunks) {
    const buf = concat([pending, chunk]);
    out.directory = directory;
    const pos = protocol.answer(state, buf, 0, buf.length, false, out);
    if (out.pending) replies += decoder.decode(out.bytes());
    out.reset();
    pending = buf.slice(pos);
    most = Math.max(most, protocol.memory(state));
    if (out.closing !== "") break;
  }
  return { replies, most, closing: out.closing };
}

/** `count` arguments of one byte each, in chunks of 10 000. */
function* tinyArguments(count: number): Generator<Uint8Array> {
  const chunk = encoder.encode("$1\r\nx\r\n".repeat(10_000));
  for (let sent = 0; sent < count; sent += 10_000) yield chunk;
}

Deno.test("redis limits: a command that never ends holds at most max-command", () => {
  const protocol = new RedisProtocol({ info, maxCommand: 64 * 1024 });
  const { replies, most } = feed(protocol, [
    encoder.encode("*1000001\r\n$4\r\nPING\r\n"),
    ...tinyArguments(1_000_000),
    cmd("GET", "k1"),
  ]);
  assertOk(most <= 64 * 1024, `held ${most} bytes`);
  assertEquals(
    replies,
    "-ERR command too big: its arguments take over 65536 bytes\r\n" +
      `$${V1.length}\r\n${V1}\r\n`,
  );
  // More arguments than --redis-max-args is refused at the count, as Redis refuses too many.
  const counted = feed(new RedisProtocol({ info, maxArguments: 1000 }), [
    encoder.encode("*1001\r\n$4\r\nMGET\r\n"),
  ]);
  assertEquals(counted.replies, "-ERR Protocol error: invalid multibulk length\r\n");
  assertEquals(counted.closing, "protocol error: invalid multibulk length");
  // GET, MGET and EXISTS keep nothing: a million keys, answered as they come.
  const streamed = feed(new RedisProtocol({ info, maxCommand: 4096 }), [
    encoder.encode("*1000001\r\n$6\r\nEXISTS\r\n"),
    ...tinyArguments(1_000_000),
  ]);
  assertEquals([streamed.replies, streamed.most], [":0\r\n", 0]);
});

Deno.test("redis limits: a MULTI queue is counted by the memory it takes, as it arrives", () => {
  const protocol = new RedisProtocol({ info, maxCommand: 64 * 1024 });
  // One huge queued EXISTS, then many small GETs: both stop at the bound.
  const { replies, most } = feed(protocol, [
    cmd("MULTI"),
    encoder.encode("*1000001\r\n$6\r\nEXISTS\r\n"),
    ...tinyArguments(1_000_000),
    ...Array.from(
      { length: 100 },
      () => concat(Array.from({ length: 100 }, () => cmd("GET", "k"))),
    ),
    cmd("EXEC"),
    cmd("GET", "k1"),
  ]);
  assertOk(most <= 64 * 1024, `held ${most} bytes`);
  const lines = replies.split("\r\n");
  assertEquals(lines[0], "+OK");
  assertEquals(lines[1], "-ERR MULTI can queue at most 65536 bytes of commands");
  // Each GET is counted with its objects, not only its 4 bytes: far fewer than
  // 65536 / 4 fit.
  const queued = lines.filter((l) => l === "+QUEUED").length;
  assertOk(queued > 100 && queued < 65536 / 200, `${queued} queued`);
  assertEquals(lines.at(-4), "-EXECABORT Transaction discarded because of previous errors.");
  assertEquals(lines.at(-2), V1);
});

Deno.test("redis limits: an HTTP request on the Redis port is closed unanswered, as Redis does", async () => {
  for (
    const request of [
      "POST / HTTP/1.1\r\nHost: x\r\n\r\nGET k1\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      cmd("host:", "x"),
    ]
  ) {
    const { output, closed, counters } = await exchange(new RedisProtocol({ info }), request, {
      directory,
      eof: false,
    });
    // Only what came before the line naming `POST` or `Host:` is answered.
    const before = request === "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
      ? "-ERR wrong number of arguments for 'get' command\r\n"
      : "";
    assertEquals([output, closed, counters.protocolErrors], [
      before,
      "an HTTP request (POST or Host:) on the Redis port",
      1,
    ]);
  }
});

Deno.test("redis limits: what the differential fuzz found, answered as redis-server 7.0.15 does", async () => {
  const cases: [string | Uint8Array, string][] = [
    // A vertical tab or a form feed is part of an inline argument.
    ["PING\x0bx\r\n", "-ERR unknown command 'PING\x0bx', with args beginning with: \r\n"],
    ["GET\x0ck1\r\n", "-ERR unknown command 'GET\x0ck1', with args beginning with: \r\n"],
    // A count at most zero, however long, is skipped.
    ["*-1000000000000000\r\nPING\r\n", "+PONG\r\n"],
    // SELECT: past a 32-bit int, and past a 64-bit one.
    [
      "SELECT 2147483648\r\n",
      "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n",
    ],
    [
      "SELECT -9223372036854775808\r\n",
      "-ERR value is out of range, value must between -2147483648 and 2147483647\r\n",
    ],
    ["SELECT 9223372036854775808\r\n", "-ERR value is not an integer or out of range\r\n"],
    // A refused EXEC aborts, and ends the transaction.
    [
      "EXEC x\r\n",
      "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n",
    ],
    [
      "MULTI\r\nEXEC x\r\nPING\r\n",
      "+OK\r\n-EXECABORT Transaction discarded because of: wrong number of arguments for " +
      "'exec' command\r\n+PONG\r\n",
    ],
    // HELLO: a version that is an integer past 2^53; options in order.
    ["HELLO 1000000000000000000\r\n", "-NOPROTO unsupported protocol version\r\n"],
    [
      "HELLO 3 AUTH nouser x AUTH default y\r\n",
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    ],
    [
      "HELLO 3 AUTH nouser x foo\r\n",
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    ],
    [
      "HELLO 3 SETNAME a foo\r\nCLIENT GETNAME\r\n",
      "-ERR Syntax error in HELLO option 'foo'\r\n$1\r\na\r\n",
    ],
    // An option's name is compared up to a NUL, as strcasecmp does.
    [
      cmd("HELLO", "3", "AUTH\0x", "nouser", "pw"),
      "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    ],
    // Names are lowered by ASCII rules only: the Kelvin sign is not a k.
    [
      cmd("UNLIN\u212a", "x"),
      "-ERR unknown command 'UNLIN\xe2\x84\xaa', with args beginning with: 'x' \r\n",
    ],
  ];
  for (const [input, expected] of cases) {
    const { bytes } = await exchange(new RedisProtocol({ info }), input, {
      directory,
      eof: false,
    });
    assertEquals(
      latin1(bytes),
      expected,
      latin1(typeof input === "string" ? encoder.encode(input) : input),
    );
  }
});

Deno.test("redis limits: an inline MGET whose replies run far past max-pending costs time linear in them", async () => {
  // An inline command is answered whole: its replies cannot stop at max-pending, so the
  // reply buffer must keep doubling past it rather than grow reply by reply (quadratic).
  const value = { v: "x".repeat(700) };
  const big = await directoryOf(`${record("k1", value)}\n`);
  const keys = 3000;
  const started = performance.now();
  const { bytes } = await exchange(new RedisProtocol({ info }), `MGET${" k1".repeat(keys)}\r\n`, {
    directory: big,
    maxPending: 64 * 1024,
  });
  const elapsed = performance.now() - started;
  const answer = encoder.encode(record("k1", value));
  const one = `$${answer.length}\r\n`.length + answer.length + 2;
  assertEquals(bytes.length, `*${keys}\r\n`.length + keys * one);
  // Linear: tens of milliseconds; reply by reply, seconds (3 GB copied).
  assertOk(elapsed < 1500, `${keys} replies of ${one} bytes took ${elapsed.toFixed(0)} ms`);
});
