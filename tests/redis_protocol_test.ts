/**
 * The Redis protocol by bytes in and bytes out, with no socket. Expected
 * replies are what a real redis-server 7.0.15 sends for the same bytes
 * (recorded), except where sipdir differs on purpose (read-only, one
 * database, its own HELLO server name).
 */

import { assertEquals, assertOk } from "./assert.ts";
import { RedisProtocol } from "../lib/protocol/redis/redis.ts";
import { exchange, type ExchangeOptions } from "../testing/protocol_harness.ts";
import { directoryOf, record } from "./helpers.ts";

const V1 = record("k1", { v: 1 });
const V2 = record("k2", { v: 2 });
const directory = await directoryOf(`${V1}\n${V2}\n`);
const info = {
  version: "9.9.9",
  connectedClients: () => 7,
  uptimeSeconds: () => 90,
  port: () => 6379,
};
const encoder = new TextEncoder();

/** RESP multibulk encoding of a command. */
function cmd(...args: string[]): string {
  return `*${args.length}\r\n` +
    args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("");
}

/** `$n` and the bytes of a bulk string. */
function bulk(text: string): string {
  return `$${encoder.encode(text).length}\r\n${text}\r\n`;
}

function run(input: string, options: ExchangeOptions & { password?: string } = {}) {
  const protocol = new RedisProtocol({
    info,
    maxArgument: 64,
    password: options.password === undefined ? undefined : encoder.encode(options.password),
  });
  return exchange(protocol, input, { directory, ...options });
}

async function replies(input: string, options: ExchangeOptions & { password?: string } = {}) {
  return (await run(input, options)).output;
}

Deno.test("redis protocol: GET, MGET, EXISTS, DBSIZE, case-insensitive names", async () => {
  assertEquals(await replies(cmd("GET", "k1")), bulk(V1));
  assertEquals(await replies(cmd("get", "nope")), "$-1\r\n");
  assertEquals(
    await replies(cmd("MGET", "k1", "nope", "k2")),
    `*3\r\n${bulk(V1)}$-1\r\n${bulk(V2)}`,
  );
  assertEquals(await replies(cmd("EXISTS", "k1", "nope", "k1")), ":2\r\n");
  assertEquals(await replies(cmd("DBSIZE")), ":2\r\n");
  const { counters } = await run(cmd("MGET", "k1", "x") + cmd("GET", "k2") + cmd("EXISTS", "y"));
  assertEquals([counters.lookups, counters.hits, counters.misses], [4, 2, 2]);
});

Deno.test("redis protocol: PING, ECHO, SELECT, QUIT", async () => {
  assertEquals(await replies(cmd("PING")), "+PONG\r\n");
  assertEquals(await replies(cmd("PING", "hello")), bulk("hello"));
  assertEquals(await replies(cmd("ECHO", "hi")), bulk("hi"));
  assertEquals(await replies(cmd("SELECT", "0")), "+OK\r\n");
  assertEquals(await replies(cmd("SELECT", "1")), "-ERR DB index is out of range\r\n");
  assertEquals(
    await replies(cmd("SELECT", "x")),
    "-ERR value is not an integer or out of range\r\n",
  );
  const quit = await run(cmd("QUIT") + cmd("PING"));
  assertEquals([quit.output, quit.closed], ["+OK\r\n", "QUIT"]);
});

Deno.test("redis protocol: arity, unknown commands and writes, in Redis's words", async () => {
  assertEquals(await replies(cmd("GET")), "-ERR wrong number of arguments for 'get' command\r\n");
  assertEquals(
    await replies(cmd("GET", "a", "b")),
    "-ERR wrong number of arguments for 'get' command\r\n",
  );
  assertEquals(await replies(cmd("MGET")), "-ERR wrong number of arguments for 'mget' command\r\n");
  assertEquals(
    await replies(cmd("FOO", "a", "b")),
    "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
  );
  assertEquals(
    await replies(cmd("FOO")),
    "-ERR unknown command 'FOO', with args beginning with: \r\n",
  );
  assertEquals(
    await replies(cmd("FOO", "x".repeat(60), "y".repeat(60), "z".repeat(60))),
    `-ERR unknown command 'FOO', with args beginning with: '${"x".repeat(60)}' '${
      "y".repeat(60)
    }' '${"z".repeat(2)}' \r\n`,
  );
  const readonly = "-READONLY You can't write against a read only replica.\r\n";
  assertEquals(await replies(cmd("SET", "a", "b")), readonly);
  assertEquals(await replies(cmd("DEL", "k1")), readonly);
  assertEquals(await replies(cmd("FLUSHALL")), readonly);
  assertEquals(
    await replies(cmd("SET", "a")),
    "-ERR wrong number of arguments for 'set' command\r\n",
  );
  assertEquals(
    await replies(cmd("CLUSTER", "SLOTS")),
    "-ERR This instance has cluster support disabled\r\n",
  );
  // The data is untouched.
  assertEquals(await replies(cmd("GET", "k1")), bulk(V1));
});

Deno.test("redis protocol: CLIENT, COMMAND, CONFIG GET, INFO", async () => {
  assertEquals(
    await replies(cmd("CLIENT", "SETNAME", "n1") + cmd("CLIENT", "GETNAME")),
    "+OK\r\n" + bulk("n1"),
  );
  assertEquals(await replies(cmd("CLIENT", "GETNAME")), "$-1\r\n");
  assertEquals(
    await replies(cmd("CLIENT", "SETNAME", "a b")),
    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
  );
  assertEquals(await replies(cmd("CLIENT", "SETINFO", "lib-name", "x")), "+OK\r\n");
  assertEquals(
    await replies(cmd("CLIENT", "FOO")),
    "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n",
  );
  assertOk(/^:\d+\r\n$/.test(await replies(cmd("CLIENT", "ID"))));
  assertEquals(await replies(cmd("COMMAND")), "*0\r\n");
  assertEquals(await replies(cmd("COMMAND", "COUNT")), ":0\r\n");
  assertEquals(await replies(cmd("COMMAND", "DOCS", "get")), "*0\r\n");
  assertEquals(await replies(cmd("CONFIG", "GET", "save")), `*2\r\n${bulk("save")}${bulk("")}`);
  assertEquals(
    await replies(cmd("CONFIG", "GET", "appendonly")),
    `*2\r\n${bulk("appendonly")}${bulk("no")}`,
  );
  assertEquals(await replies(cmd("CONFIG", "GET", "nosuch")), "*0\r\n");
  const keyspace = "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n";
  assertEquals(await replies(cmd("INFO", "keyspace")), bulk(keyspace));
  const all = await replies(cmd("INFO"));
  for (
    const line of [
      "redis_version:7.0.0",
      "sipdir_version:9.9.9",
      "redis_mode:standalone",
      "loading:0",
      "role:master",
      "connected_clients:7",
      "db0:keys=2",
    ]
  ) {
    assertOk(all.includes(line), line);
  }
});

Deno.test("redis protocol: HELLO 2 and 3; RESP3 nulls, maps and verbatim INFO", async () => {
  const map = (proto: number) =>
    [
      bulk("server"),
      bulk("sipdir"),
      bulk("version"),
      bulk("7.0.0"),
      bulk("proto"),
      `:${proto}\r\n`,
      bulk("id"),
      ":1\r\n",
      bulk("mode"),
      bulk("standalone"),
      bulk("role"),
      bulk("master"),
      bulk("modules"),
      "*0\r\n",
    ].join("");
  assertEquals(await replies(cmd("HELLO")), `*14\r\n${map(2)}`);
  assertEquals(await replies(cmd("HELLO", "3")), `%7\r\n${map(3)}`);
  assertEquals(await replies(cmd("HELLO", "4")), "-NOPROTO unsupported protocol version\r\n");
  assertEquals(
    await replies(cmd("HELLO", "x")),
    "-ERR Protocol version is not an integer or out of range\r\n",
  );
  assertEquals(
    await replies(cmd("HELLO", "3", "FOO")),
    "-ERR Syntax error in HELLO option 'FOO'\r\n",
  );
  const resp3 = await replies(
    cmd("HELLO", "3", "SETNAME", "cl") + cmd("GET", "nope") + cmd("MGET", "k1", "nope") +
      cmd("CLIENT", "GETNAME") + cmd("CONFIG", "GET", "save") + cmd("INFO", "keyspace"),
  );
  const keyspace = "# Keyspace\r\ndb0:keys=2,expires=0,avg_ttl=0\r\n";
  assertEquals(
    resp3,
    `%7\r\n${map(3)}_\r\n*2\r\n${bulk(V1)}_\r\n${bulk("cl")}%1\r\n${bulk("save")}${bulk("")}` +
      `=${keyspace.length + 4}\r\ntxt:${keyspace}\r\n`,
  );
  // Back to RESP2.
  assertOk(
    (await replies(cmd("HELLO", "3") + cmd("HELLO", "2") + cmd("GET", "x"))).endsWith(
      "*0\r\n$-1\r\n",
    ),
  );
});

Deno.test("redis protocol: MULTI, EXEC, DISCARD and aborted transactions", async () => {
  assertEquals(
    await replies(
      cmd("MULTI") + cmd("GET", "k1") + cmd("GET", "nope") + cmd("MGET", "k2") + cmd("EXEC"),
    ),
    `+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n${bulk(V1)}$-1\r\n*1\r\n${bulk(V2)}`,
  );
  assertEquals(
    await replies(cmd("MULTI") + cmd("MULTI")),
    "+OK\r\n-ERR MULTI calls can not be nested\r\n",
  );
  assertEquals(await replies(cmd("EXEC")), "-ERR EXEC without MULTI\r\n");
  assertEquals(await replies(cmd("DISCARD")), "-ERR DISCARD without MULTI\r\n");
  assertEquals(
    await replies(cmd("MULTI") + cmd("GET", "k1") + cmd("DISCARD")),
    "+OK\r\n+QUEUED\r\n+OK\r\n",
  );
  assertEquals(
    await replies(cmd("MULTI") + cmd("NOSUCH") + cmd("EXEC")),
    "+OK\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n" +
      "-EXECABORT Transaction discarded because of previous errors.\r\n",
  );
  assertEquals(
    await replies(cmd("MULTI") + cmd("GET") + cmd("EXEC")),
    "+OK\r\n-ERR wrong number of arguments for 'get' command\r\n" +
      "-EXECABORT Transaction discarded because of previous errors.\r\n",
  );
  assertEquals(
    await replies(cmd("HELLO", "3") + cmd("MULTI") + cmd("GET", "nope") + cmd("EXEC")).then((s) =>
      s.slice(s.indexOf("+OK"))
    ),
    "+OK\r\n+QUEUED\r\n*1\r\n_\r\n",
  );
});

Deno.test("redis protocol: AUTH with and without a password", async () => {
  const password = "sekret";
  assertEquals(
    await replies(cmd("GET", "k1"), { password }),
    "-NOAUTH Authentication required.\r\n",
  );
  assertEquals(await replies(cmd("PING"), { password }), "-NOAUTH Authentication required.\r\n");
  assertEquals(
    await replies(cmd("AUTH", "nope"), { password }),
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
  );
  assertEquals(
    await replies(cmd("AUTH", password) + cmd("GET", "k1"), { password }),
    `+OK\r\n${bulk(V1)}`,
  );
  assertEquals(await replies(cmd("AUTH", "default", password), { password }), "+OK\r\n");
  assertEquals(
    await replies(cmd("AUTH", "bob", password), { password }),
    "-WRONGPASS invalid username-password pair or user is disabled.\r\n",
  );
  assertEquals(await replies(cmd("AUTH", "a", "b", "c"), { password }), "-ERR syntax error\r\n");
  assertOk(
    (await replies(cmd("HELLO", "3"), { password })).startsWith(
      "-NOAUTH HELLO must be called with the client already authenticated",
    ),
  );
  assertOk(
    (await replies(cmd("HELLO", "3", "AUTH", "default", password) + cmd("GET", "nope"), {
      password,
    }))
      .endsWith("_\r\n"),
  );
  assertEquals((await run(cmd("QUIT"), { password })).closed, "QUIT");
  // Without a password configured.
  assertEquals(
    await replies(cmd("AUTH", "pw")),
    "-ERR AUTH <password> called without any password configured for the default user. " +
      "Are you sure your configuration is correct?\r\n",
  );
  assertEquals(await replies(cmd("AUTH", "default", "pw")), "+OK\r\n");
  // Limits before authentication, as Redis: at most 10 arguments and 16 KiB each.
  const big = await run("*11\r\n", { password });
  assertEquals(big.output, "-ERR Protocol error: unauthenticated multibulk length\r\n");
  assertEquals(
    await replies(cmd(..."PING x x x x x x x x x".split(" ")), { password }),
    "-NOAUTH Authentication required.\r\n",
  );
});

Deno.test("redis protocol: inline commands, as typed into nc or telnet", async () => {
  assertEquals(await replies("GET k1\r\nGET nope\nPING\r\n"), `${bulk(V1)}$-1\r\n+PONG\r\n`);
  assertEquals(await replies('GET "k1"\r\n'), bulk(V1));
  assertEquals(await replies('ECHO "a\\x41b\\n"\r\n'), bulk("aAb\n"));
  assertEquals(await replies("\r\n   \r\nPING\r\n"), "+PONG\r\n");
  const unbalanced = await run('GET "k1\r\nPING\r\n');
  assertEquals(unbalanced.output, "-ERR Protocol error: unbalanced quotes in request\r\n");
  assertEquals(unbalanced.closed.startsWith("protocol error"), true);
  assertEquals(
    await replies("SET a b\r\n"),
    "-READONLY You can't write against a read only replica.\r\n",
  );
});

Deno.test("redis protocol: inline GET, answered where it lies, is the GET of its split arguments", async () => {
  const arity = "-ERR wrong number of arguments for 'get' command\r\n";
  const cases: [string, string][] = [
    ["  gEt\tk1 \x0b\r\n", bulk(V1)],
    ["GET nope\n", "$-1\r\n"],
    ["GET k1 k2\r\n", arity],
    ["GET\r\n", arity],
    ["GET   \r\n", arity],
    ["GETS k1\r\n", "-ERR unknown command 'GETS', with args beginning with: 'k1' \r\n"],
    ["GET 'k1'\r\n", bulk(V1)],
    // A quote opens inside a word too (Redis 7.0.15 answers this with k1's value).
    ["GET k'1'\r\n", bulk(V1)],
    ["GET k'1\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"],
  ];
  for (const [input, output] of cases) {
    const result = await run(input);
    assertEquals(result.output, output, JSON.stringify(input));
  }
  const counted = await run("GET k1\r\nGET nope\r\n");
  assertEquals([counted.counters.lookups, counted.counters.hits], [2, 1]);
  assertEquals(
    await replies("GET k1\r\n", { password: "sekret" }),
    "-NOAUTH Authentication required.\r\n",
  );
  assertEquals(
    await replies("MULTI\r\nGET k1\r\nEXEC\r\n"),
    `+OK\r\n+QUEUED\r\n*1\r\n${bulk(V1)}`,
  );
});

Deno.test("redis protocol: multibulk GET, answered where it lies, replies as any command would", async () => {
  const get = (length: string, key: string, end = "\r\n") =>
    `*2\r\n$3\r\nGET\r\n$${length}\r\n${key}${end}`;
  const invalid = "-ERR Protocol error: invalid bulk length\r\n";
  const cases: [string, string][] = [
    [get("2", "k1"), bulk(V1)],
    ["*2\r\n$3\r\ngEt\r\n$2\r\nk2\r\n", bulk(V2)],
    [get("4", "nope"), "$-1\r\n"],
    [get("0", ""), "$-1\r\n"],
    // Redis reads the two bytes after a bulk string without looking at them.
    [get("2", "k1", "xx"), bulk(V1)],
    // What Redis refuses, the shortcut must not answer: no length, a leading zero, too long.
    [get("", ""), invalid],
    [get("02", "k1"), invalid],
    [get("00", ""), invalid],
    [get("65", "k".repeat(65)), invalid],
  ];
  for (const [input, output] of cases) {
    const result = await run(input + cmd("PING"), { eof: false });
    const expected = output === invalid ? output : `${output}+PONG\r\n`;
    assertEquals(result.output, expected, JSON.stringify(input));
  }
  const counted = await run(get("2", "k1") + get("4", "nope"));
  assertEquals([counted.counters.lookups, counted.counters.hits], [2, 1]);
  assertEquals(
    await replies(get("2", "k1"), { password: "sekret" }),
    "-NOAUTH Authentication required.\r\n",
  );
  assertEquals(
    await replies(cmd("MULTI") + get("2", "k1") + cmd("EXEC")),
    `+OK\r\n+QUEUED\r\n*1\r\n${bulk(V1)}`,
  );
  // With max-argument under 3, the name itself is too long, as for any command.
  const tiny = await exchange(new RedisProtocol({ info, maxArgument: 2 }), get("2", "k1"), {
    directory,
  });
  assertEquals(tiny.output, invalid);
  // Split anywhere, it is answered once, whole.
  const two = get("2", "k1") + get("2", "k2");
  for (let cut = 0; cut <= two.length; cut++) {
    assertEquals(await replies(two, { cuts: [cut] }), bulk(V1) + bulk(V2), `cut at ${cut}`);
  }
});

Deno.test("redis protocol: each protocol error replies as Redis does and closes", async () => {
  const errors: [string, string][] = [
    ["*1\r\n$x\r\n", "invalid bulk length"],
    ["*1\r\n$-3\r\n", "invalid bulk length"],
    ["*x\r\n", "invalid multibulk length"],
    ["*1\r\n:3\r\n", "expected '$', got ':'"],
    [`*2\r\n$3\r\nGET\r\n$65\r\n${"k".repeat(65)}\r\n`, "invalid bulk length"],
    ["G".repeat(70_000) + "\r\n", "too big inline request"],
  ];
  for (const [input, text] of errors) {
    const result = await run(cmd("PING") + input + cmd("PING"), { eof: false });
    assertEquals(result.output, `+PONG\r\n-ERR Protocol error: ${text}\r\n`, text);
    assertEquals(result.closed, `protocol error: ${text}`);
    assertEquals(result.counters.protocolErrors, 1);
  }
  // An inline line without its end, past 64 KiB, is cut off without waiting.
  const open = await run("G".repeat(70_000), { eof: false });
  assertEquals(open.output, "-ERR Protocol error: too big inline request\r\n");
  // The bound is exact: 64 KiB before the line end is a command, one byte more is not.
  const longest = await run(`ECHO ${"e".repeat(65_536 - 5)}\n`, { eof: false });
  assertEquals(longest.output, bulk("e".repeat(65_536 - 5)));
  const over = await run(`ECHO ${"e".repeat(65_536 - 4)}\n`, { eof: false });
  assertEquals(over.output, "-ERR Protocol error: too big inline request\r\n");
  // Counts of zero or less are skipped, as in Redis.
  assertEquals(await replies("*0\r\n*-1\r\n" + cmd("PING")), "+PONG\r\n");
});

Deno.test("redis protocol: every split point of a pipelined batch gives the same replies", async () => {
  const batch = cmd("GET", "k1") + cmd("MGET", "nope", "k2") + "PING\r\n" + cmd("EXISTS", "k1") +
    cmd("HELLO", "3") + cmd("GET", "nope") + cmd("MULTI") + cmd("GET", "k2") + cmd("EXEC");
  const whole = await replies(batch);
  assertOk(whole.endsWith(`*1\r\n${bulk(V2)}`), whole);
  for (let cut = 0; cut <= batch.length; cut++) {
    assertEquals(await replies(batch, { cuts: [cut] }), whole, `cut at ${cut}`);
  }
  const bytewise = Array.from({ length: batch.length }, (_, i) => i);
  assertEquals(await replies(batch, { cuts: bytewise }), whole);
});

Deno.test("redis protocol: a huge MGET stops at max-pending and resumes, key by key", async () => {
  const keys = Array.from({ length: 5000 }, (_, i) => (i % 2 ? "k1" : "nope"));
  const result = await run(cmd("MGET", ...keys), { maxPending: 4096 });
  const expected = `*5000\r\n` + keys.map((k) => (k === "k1" ? bulk(V1) : "$-1\r\n")).join("");
  assertEquals(result.output, expected);
  // Each write holds at most max-pending and the reply that crossed it.
  assertOk(result.writes >= expected.length / (4096 + 200), `${result.writes} writes`);
  // The same inside MULTI/EXEC.
  const exec = await run(cmd("MULTI") + cmd("MGET", ...keys) + cmd("EXEC"), { maxPending: 4096 });
  assertEquals(exec.output, `+OK\r\n+QUEUED\r\n*1\r\n${expected}`);
});
