/**
 * sipdir's Redis port with Redis's own command-line tools (Debian's
 * redis-tools, 7.0): `redis-cli` one-shot, in RESP2 and RESP3 (`-3`), with a
 * password, reading commands from stdin; and `redis-benchmark`, whose random
 * keys (`key:__rand_int__` with `-r`) hit a dump of `key:000000000042`-shaped
 * AORs.
 *
 * Fails (does not skip) when redis-tools is missing: `.ci/run` installs it.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { PASSWORD, RedisDataset, RedisSipdir, run, UNKNOWN } from "./redis_clients.ts";

const encoder = new TextEncoder();

/** redis-cli against `port`, its output raw (as when stdout is not a terminal) unless told. */
function cli(port: number, args: string[], stdin?: string) {
  return run("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...args], {
    stdin,
    timeoutMs: 20_000,
    debianPackage: "redis-tools",
  });
}

/** Asserts redis-cli exited 0 and printed exactly `expected` (bytes). */
async function assertPrints(
  ran: Promise<{ code: number | null; bytes: Uint8Array; stderr: string }>,
  expected: string,
  what: string,
): Promise<void> {
  const { code, bytes, stderr } = await ran;
  assertEquals(code, 0, `${what}: exit status ${code}, stderr: ${stderr}`);
  assertEquals(bytes, encoder.encode(expected), what);
}

Deno.test("redis-cli: GET, MGET, EXISTS, DBSIZE, INFO keyspace, RESP3, AUTH, stdin", async (t) => {
  const data = RedisDataset.generated(500, 31);
  const aors = data.sample(20);
  const sipdir = await RedisSipdir.start(data);
  const { port } = sipdir;
  try {
    await t.step("GET of each sampled AOR (non-ASCII one included): its registration", async () => {
      for (const aor of aors) {
        await assertPrints(cli(port, ["GET", aor]), data.get(aor) + "\n", aor);
      }
    });
    await t.step("GET of unknown AORs: (nil), in RESP2 and with -3 (RESP3)", async () => {
      for (const aor of UNKNOWN) {
        await assertPrints(cli(port, ["--no-raw", "GET", aor]), "(nil)\n", aor);
        await assertPrints(cli(port, ["-3", "--no-raw", "GET", aor]), "(nil)\n", `-3 ${aor}`);
      }
    });
    await t.step("-3 GET hit, and HELLO shows proto 3", async () => {
      for (const aor of aors.slice(0, 5)) {
        await assertPrints(cli(port, ["-3", "GET", aor]), data.get(aor) + "\n", `-3 ${aor}`);
      }
      const hello = await cli(port, ["-3", "HELLO"]);
      assertOk(/^proto 3$/m.test(hello.stdout), hello.stdout);
    });
    await t.step("MGET of hits and misses: one line each, empty for a miss", async () => {
      const keys = [aors[0], UNKNOWN[0], aors[1], data.nonAscii, UNKNOWN[1], aors[2]];
      const expected = keys.map((k) => (data.get(k) ?? "") + "\n").join("");
      await assertPrints(cli(port, ["MGET", ...keys]), expected, "MGET");
      await assertPrints(cli(port, ["-3", "MGET", ...keys]), expected, "-3 MGET");
      await assertPrints(
        cli(port, ["--no-raw", "MGET", UNKNOWN[0], UNKNOWN[1]]),
        "1) (nil)\n2) (nil)\n",
        "MGET misses",
      );
    });
    await t.step("EXISTS counts hits, repeats included; DBSIZE counts the dump", async () => {
      await assertPrints(
        cli(port, ["EXISTS", aors[0], UNKNOWN[0], aors[1], aors[0]]),
        "3\n",
        "EXISTS",
      );
      await assertPrints(cli(port, ["EXISTS", UNKNOWN[0]]), "0\n", "EXISTS miss");
      await assertPrints(cli(port, ["DBSIZE"]), `${data.aors.length}\n`, "DBSIZE");
    });
    await t.step("INFO keyspace, in RESP2 and RESP3", async () => {
      const expected = `# Keyspace\ndb0:keys=${data.aors.length},expires=0,avg_ttl=0\n`;
      for (const resp of [[], ["-3"]]) {
        const { code, stdout } = await cli(port, [...resp, "INFO", "keyspace"]);
        assertEquals(code, 0);
        assertEquals(stdout.replaceAll("\r\n", "\n").trim() + "\n", expected, resp.join(""));
      }
    });
    await t.step("commands on stdin, one session", async () => {
      const keys = [aors[3], UNKNOWN[0], aors[4]];
      const input = keys.map((k) => `GET ${k}\n`).join("") + "PING\nDBSIZE\n";
      const expected = keys.map((k) => (data.get(k) ?? "") + "\n").join("") +
        `PONG\n${data.aors.length}\n`;
      await assertPrints(cli(port, [], input), expected, "stdin");
    });
    await t.step("a write is refused as on a read-only replica", async () => {
      // In raw mode, redis-cli ends an error with an empty line (as against Redis).
      const { stdout } = await cli(port, ["SET", aors[0], "x"]);
      assertEquals(stdout, "READONLY You can't write against a read only replica.\n\n");
      await assertPrints(cli(port, ["GET", aors[0]]), data.get(aors[0]) + "\n", "unchanged");
    });
  } finally {
    await sipdir.stop();
  }

  const guarded = await RedisSipdir.start(data, { password: PASSWORD });
  try {
    await t.step("with --redis-password-file: -a right works, wrong and none fail", async () => {
      const p = guarded.port;
      const auth = ["--no-auth-warning", "-a"];
      await assertPrints(cli(p, [...auth, PASSWORD, "GET", aors[0]]), data.get(aors[0]) + "\n", "");
      await assertPrints(
        cli(p, [...auth, PASSWORD, "-3", "GET", aors[1]]),
        data.get(aors[1]) + "\n",
        "",
      );
      await assertPrints(cli(p, [...auth, PASSWORD, "--no-raw", "GET", UNKNOWN[0]]), "(nil)\n", "");
      const wrong = await cli(p, [...auth, "wrong", "GET", aors[0]]);
      assertOk(/WRONGPASS/.test(wrong.stdout + wrong.stderr), wrong.stdout + wrong.stderr);
      assertOk(/NOAUTH/.test(wrong.stdout), `GET after a failed AUTH: ${wrong.stdout}`);
      const none = await cli(p, ["GET", aors[0]]);
      assertEquals(none.stdout, "NOAUTH Authentication required.\n\n");
    });
  } finally {
    await guarded.stop();
  }
});

/** redis-benchmark against `port` with `args`: its output, with no error in it. */
async function benchmark(port: number, args: string[]): Promise<string> {
  const ran = await run(
    "redis-benchmark",
    ["-h", "127.0.0.1", "-p", String(port), "-q", ...args],
    { timeoutMs: 60_000, debianPackage: "redis-tools" },
  );
  // Progress lines end with CR; the results with LF.
  const lines = (ran.stdout + ran.stderr).split(/[\r\n]+/).filter((l) => l.trim() !== "");
  const errors = lines.filter((l) => /error|err |wrong|unknown|readonly|noauth/i.test(l));
  assertEquals(ran.code, 0, `redis-benchmark ${args.join(" ")}: ${ran.stderr}`);
  assertEquals(errors, [], `redis-benchmark ${args.join(" ")}`);
  const results = lines.filter((l) => /requests per second/.test(l) && !/rps=/.test(l));
  for (const line of results) console.log(`  ${line.trim()}`);
  return results.join("\n");
}

Deno.test("redis-benchmark: GET, PING, MGET, pipelined, with random keys that all hit", async (t) => {
  const keys = 1000;
  const data = RedisDataset.benchmarkKeys(keys);
  const sipdir = await RedisSipdir.start(data);
  try {
    const port = sipdir.port;
    const redis = async () => {
      const c = await sipdir.counters();
      return { lookups: c["redis.lookups"], hits: c["redis.hits"], misses: c["redis.misses"] };
    };
    await t.step("-t get,mget,ping -n 2000 (no MGET test exists: runs GET and PINGs)", async () => {
      const out = await benchmark(port, ["-t", "get,mget,ping", "-n", "2000"]);
      for (const name of ["PING_INLINE", "PING_MBULK", "GET"]) {
        assertOk(new RegExp(`^ *${name}: `, "m").test(out), `no ${name} result in:\n${out}`);
      }
    });
    await t.step("-t get -r 1000: every random key is a hit", async () => {
      const before = await redis();
      await benchmark(port, ["-t", "get", "-n", "2000", "-r", String(keys)]);
      const after = await redis();
      assertEquals(after.hits - before.hits, 2000);
      assertEquals(after.misses - before.misses, 0);
    });
    await t.step("MGET of 3 random keys, -r 1000: all hits", async () => {
      const before = await redis();
      const mget = ["MGET", "key:__rand_int__", "key:__rand_int__", "key:__rand_int__"];
      const out = await benchmark(port, ["-n", "2000", "-r", String(keys), ...mget]);
      assertOk(/^ *MGET key:__rand_int__/m.test(out), out);
      const after = await redis();
      assertEquals(after.hits - before.hits, 6000);
      assertEquals(after.misses - before.misses, 0);
    });
    await t.step("-P 16 -c 20 pipelined GETs: all hits", async () => {
      const before = await redis();
      await benchmark(port, [
        "-t",
        "get",
        "-n",
        "20000",
        "-r",
        String(keys),
        "-P",
        "16",
        "-c",
        "20",
      ]);
      const after = await redis();
      assertEquals(after.hits - before.hits, 20000);
      assertEquals(after.misses - before.misses, 0);
    });
  } finally {
    await sipdir.stop();
  }
});
