/**
 * sipdir's Redis port with redis-py, as Debian 12 ships it (python3-redis,
 * 4.3), run by Debian's own Python (/usr/bin/python3, not a python3 on PATH
 * that may lack it): GET, MGET, EXISTS, the default pipeline (MULTI/EXEC)
 * and a plain one, with and without a password. `redis_py_client.py` beside
 * this file does the talking and prints what it got, values base64-encoded.
 *
 * Fails (does not skip) when python3-redis is missing: `.ci/run` installs it.
 */

import { assertEquals } from "../assert.ts";
import { PASSWORD, RedisDataset, RedisSipdir, run, UNKNOWN } from "./redis_clients.ts";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./redis_py_client.py", import.meta.url).pathname;
const encoder = new TextEncoder();

const data = RedisDataset.generated(1000, 51);
const KEYS = data.sample(20).flatMap((aor, i) => [aor, UNKNOWN[i % UNKNOWN.length]]);
const PIPELINE = Array.from(
  { length: 1000 },
  (_, i) => i % 5 === 2 ? `missing-${i}` : data.aors[(i * 7) % data.aors.length],
);

/** A value as the script prints it: base64 of its bytes, or null. */
function bytesOf(value: string | null): string | null {
  return value === null ? null : btoa(String.fromCharCode(...encoder.encode(value)));
}

/** What GET of each key must return, as the script prints it. */
function expected(keys: string[]): (string | null)[] {
  return keys.map((key) => bytesOf(data.get(key)));
}

async function redisPy(port: number, password: string | null): Promise<Record<string, unknown>> {
  const request = JSON.stringify({ port, password, keys: KEYS, pipeline: PIPELINE });
  const ran = await run(PYTHON, [SCRIPT], {
    stdin: request,
    timeoutMs: 60_000,
    debianPackage: "python3-redis",
  });
  assertEquals(ran.code, 0, `redis_py_client.py: ${ran.stderr}`);
  return JSON.parse(ran.stdout);
}

function assertAnswers(result: Record<string, unknown>): void {
  assertEquals(result.ping, true);
  assertEquals(result.get, expected(KEYS));
  assertEquals(result.mget, expected(KEYS));
  assertEquals(result.exists, KEYS.filter((k) => data.get(k) !== null).length);
  assertEquals(result.dbsize, data.aors.length);
  const four = KEYS.slice(0, 4);
  assertEquals(result.pipeline, [
    ...expected(PIPELINE),
    expected(four),
    four.filter((k) => data.get(k) !== null).length,
  ]);
  assertEquals(result.plain_pipeline, expected(PIPELINE));
}

Deno.test("redis-py (Debian's python3-redis): GET, MGET, EXISTS, pipelines, password", async (t) => {
  // The non-ASCII registration is among the keys: bytes, not just ASCII, compared.
  assertEquals(KEYS.includes(data.nonAscii), true);
  const sipdir = await RedisSipdir.start(data);
  try {
    await t.step(
      "GET, MGET, EXISTS, pipeline() (MULTI/EXEC), pipeline(transaction=False)",
      async () => {
        const result = await redisPy(sipdir.port, null);
        console.log(`  redis-py ${result.version} (${result.parser})`);
        // Debian 12's: 4.3.
        assertEquals(String(result.version).split(".").slice(0, 2), ["4", "3"]);
        assertAnswers(result);
      },
    );
  } finally {
    await sipdir.stop();
  }
  const guarded = await RedisSipdir.start(data, { password: PASSWORD });
  try {
    await t.step("password: right works, wrong WRONGPASS, none NOAUTH", async () => {
      const result = await redisPy(guarded.port, PASSWORD);
      assertAnswers(result);
      // redis-py 4.3 maps no class to WRONGPASS: a ResponseError, as against Redis 7.0.
      assertEquals(result.wrong_password, [
        "ResponseError",
        "WRONGPASS invalid username-password pair or user is disabled.",
      ]);
      assertEquals(result.no_password, ["AuthenticationError", "Authentication required."]);
    });
  } finally {
    await guarded.stop();
  }
});
