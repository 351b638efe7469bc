/**
 * sipdir's Redis port with the Node.js clients users run, under Deno (npm:
 * specifiers, versions pinned in deno.json): node-redis (npm `redis`) in
 * RESP2 (its default: no HELLO, AUTH for a password), RESP2 by `HELLO 2` and
 * RESP3 by `HELLO 3`; and ioredis (RESP2 only; it has no RESP3). For each: connect,
 * GET hit and miss, MGET, a pipeline of 1000 GETs, MULTI/EXEC, reconnecting
 * after sipdir's idle timeout (`--redis-timeout`) closed the connection, and a password.
 */

import { createClient, RESP_TYPES } from "redis";
import { Redis } from "ioredis";
import { assertEquals, assertOk } from "../assert.ts";
import { once, PASSWORD, RedisDataset, RedisSipdir, UNKNOWN, within } from "./redis_clients.ts";

const encoder = new TextEncoder();
const data = RedisDataset.generated(2000, 41);
/** Hits and misses, interleaved; the non-ASCII AOR among them. */
const KEYS = [...data.sample(50).flatMap((aor, i) => [aor, UNKNOWN[i % UNKNOWN.length]])];
/** 1000 keys for pipelines: hits, with a miss every seventh. */
const PIPELINE = Array.from(
  { length: 1000 },
  (_, i) => i % 7 === 3 ? `missing-${i}` : data.aors[(i * 13) % data.aors.length],
);

/** Deno's sanitizers off: the clients keep timers and sockets of their own until closed. */
const OPTIONS = { sanitizeOps: false, sanitizeResources: false };

// ---------------------------------------------------------------- node-redis

type NodeRedis = ReturnType<typeof createClient>;
/** node-redis's `RESP` option: unset (RESP2 without HELLO), 2 (`HELLO 2`) or 3 (`HELLO 3`). */
type Resp = 2 | 3 | undefined;

function nodeRedis(port: number, resp: Resp, extra: Record<string, unknown> = {}): NodeRedis {
  const client = createClient({
    ...extra,
    socket: { host: "127.0.0.1", port, connectTimeout: 5000, ...extra.socket as object },
    RESP: resp,
  });
  // Without a listener, an "error" event (the server closing) would throw.
  client.on("error", () => {});
  return client;
}

/** Closes a client that may have closed itself (destroy() throws then). */
function destroy(client: NodeRedis): void {
  if (client.isOpen) client.destroy();
}

async function nodeRedisBasics(port: number, resp: Resp) {
  const client = nodeRedis(port, resp);
  await within(10_000, "connect", client.connect());
  try {
    // The connection speaks what was asked: HELLO without arguments reports it.
    const hello = await client.sendCommand<unknown>(["HELLO"]);
    const proto = hello instanceof Map
      ? hello.get("proto")
      : Array.isArray(hello)
      ? hello[hello.indexOf("proto") + 1]
      : (hello as Record<string, unknown>).proto;
    assertEquals(proto, resp ?? 2, `HELLO: ${JSON.stringify(hello)}`);

    for (const key of KEYS) assertEquals(await client.get(key), data.get(key), key);
    assertEquals(await client.mGet(KEYS), KEYS.map((k) => data.get(k)));
    // Bytes, not only strings: GET as a Buffer.
    const raw = await client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).get(
      data.nonAscii,
    );
    assertEquals(new Uint8Array(raw!), encoder.encode(data.get(data.nonAscii)!));

    // An explicit pipeline (no MULTI), and 1000 GETs issued at once (node-redis
    // writes commands of one tick together).
    const pipeline = client.multi();
    for (const key of PIPELINE) pipeline.get(key);
    assertEquals<unknown>(await pipeline.execAsPipeline(), PIPELINE.map((k) => data.get(k)));
    assertEquals(
      await Promise.all(PIPELINE.map((k) => client.get(k))),
      PIPELINE.map((k) => data.get(k)),
    );

    const multi = await client.multi().get(KEYS[0]).get(KEYS[1]).mGet(KEYS.slice(0, 4))
      .exists(KEYS.slice(0, 4)).dbSize().exec();
    assertEquals<unknown>(multi, [
      data.get(KEYS[0]),
      data.get(KEYS[1]),
      KEYS.slice(0, 4).map((k) => data.get(k)),
      2,
      data.aors.length,
    ]);
    assertEquals(await client.exists([KEYS[0], KEYS[1], KEYS[2]]), 2);
    assertEquals(await client.dbSize(), data.aors.length);
    assertEquals(await client.ping(), "PONG");
  } finally {
    destroy(client);
  }
}

/** Connects, waits for sipdir to close the idle connection, and expects the client back. */
async function nodeRedisReconnect(sipdir: RedisSipdir, resp: Resp) {
  const client = nodeRedis(sipdir.port, resp);
  await within(10_000, "connect", client.connect());
  try {
    assertEquals(await client.get(KEYS[0]), data.get(KEYS[0]));
    const from = sipdir.process.stderr.length;
    const reconnecting = once(client, "reconnecting");
    await within(10_000, "sipdir closing the idle connection", reconnecting);
    await sipdir.process.waitFor(/disconnected \(idle\)/, 10_000, from);
    await within(10_000, "ready again", once(client, "ready"));
    assertEquals(await client.get(KEYS[0]), data.get(KEYS[0]));
    assertEquals(await client.mGet(KEYS.slice(0, 6)), KEYS.slice(0, 6).map((k) => data.get(k)));
  } finally {
    destroy(client);
  }
}

async function nodeRedisPassword(port: number, resp: Resp) {
  const right = nodeRedis(port, resp, { password: PASSWORD });
  await within(10_000, "connect with the password", right.connect());
  try {
    assertEquals(await right.get(KEYS[0]), data.get(KEYS[0]));
    assertEquals(await right.get(KEYS[1]), null);
  } finally {
    destroy(right);
  }
  const wrong = nodeRedis(port, resp, {
    password: "wrong",
    socket: { reconnectStrategy: false },
  });
  const failed = await within(10_000, "connect with a wrong password", wrong.connect()).then(
    () => "connected",
    (error: Error) => error.message,
  );
  destroy(wrong);
  assertOk(/^WRONGPASS/.test(failed), `wrong password: ${failed}`);
  const none = nodeRedis(port, resp, { socket: { reconnectStrategy: false } });
  const noAuth = await within(10_000, "connect with no password", none.connect())
    .then(() => none.get(KEYS[0]))
    .then(() => "answered", (error: Error) => error.message);
  destroy(none);
  // With HELLO, the connection fails at HELLO; without, the first command.
  assertOk(/^NOAUTH/.test(noAuth), `no password: ${noAuth}`);
}

const VARIANTS: [Resp, string][] = [
  [undefined, "RESP2 (default)"],
  [2, "RESP2 (HELLO 2)"],
  [3, "RESP3 (HELLO 3)"],
];

for (const [resp, variant] of VARIANTS) {
  Deno.test({
    name: `node-redis ${variant}: GET, MGET, pipeline of 1000, MULTI/EXEC, reconnect, AUTH`,
    ...OPTIONS,
    async fn(t) {
      const sipdir = await RedisSipdir.start(data);
      try {
        await t.step("GET, MGET, pipeline, MULTI/EXEC", () => nodeRedisBasics(sipdir.port, resp));
      } finally {
        await sipdir.stop();
      }
      const idle = await RedisSipdir.start(data, { args: ["--redis-timeout", "1", "-v"] });
      try {
        await t.step(
          "reconnects after the idle timeout (--redis-timeout 1)",
          () => nodeRedisReconnect(idle, resp),
        );
      } finally {
        await idle.stop();
      }
      const guarded = await RedisSipdir.start(data, { password: PASSWORD });
      try {
        await t.step(
          "password: right works, wrong WRONGPASS, none NOAUTH",
          () => nodeRedisPassword(guarded.port, resp),
        );
      } finally {
        await guarded.stop();
      }
    },
  });
}

// ------------------------------------------------------------------- ioredis

function ioredis(port: number, extra: Record<string, unknown> = {}): Redis {
  const client = new Redis({
    host: "127.0.0.1",
    port,
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 2,
    ...extra,
  });
  client.on("error", () => {});
  return client;
}

Deno.test({
  name: "ioredis: ready check (INFO), GET, MGET, pipeline of 1000, MULTI/EXEC, reconnect, AUTH",
  ...OPTIONS,
  async fn(t) {
    const sipdir = await RedisSipdir.start(data);
    try {
      await t.step("ready check, GET, MGET, pipeline, MULTI/EXEC", async () => {
        const client = ioredis(sipdir.port);
        try {
          // connect() resolves on "ready": after the ready check, which sends
          // INFO and waits while it says loading:1.
          await within(10_000, "connect", client.connect());
          // With the ready check on, "ready" comes only after INFO said loading:0.
          assertEquals([client.options.enableReadyCheck, client.status], [true, "ready"]);
          const info = await client.info();
          assertOk(/^loading:0\r$/m.test(info), info);
          assertOk(/^redis_version:7\.0\.0\r$/m.test(info), info);
          assertOk(
            (await client.info("keyspace")).includes(`db0:keys=${data.aors.length},`),
          );

          for (const key of KEYS) assertEquals(await client.get(key), data.get(key), key);
          assertEquals(await client.mget(...KEYS), KEYS.map((k) => data.get(k)));
          const raw = await client.getBuffer(data.nonAscii);
          assertEquals(new Uint8Array(raw!), encoder.encode(data.get(data.nonAscii)!));

          const pipeline = client.pipeline();
          for (const key of PIPELINE) pipeline.get(key);
          assertEquals(await pipeline.exec(), PIPELINE.map((k) => [null, data.get(k)]));

          const multi = await client.multi().get(KEYS[0]).get(KEYS[1]).mget(...KEYS.slice(0, 4))
            .exists(...KEYS.slice(0, 4)).dbsize().exec();
          assertEquals(multi, [
            [null, data.get(KEYS[0])],
            [null, data.get(KEYS[1])],
            [null, KEYS.slice(0, 4).map((k) => data.get(k))],
            [null, 2],
            [null, data.aors.length],
          ]);
          assertEquals(await client.exists(KEYS[0], KEYS[1], KEYS[2]), 2);
        } finally {
          client.disconnect();
        }
      });
    } finally {
      await sipdir.stop();
    }

    const idle = await RedisSipdir.start(data, { args: ["--redis-timeout", "1", "-v"] });
    try {
      await t.step("reconnects after the idle timeout (--redis-timeout 1)", async () => {
        const client = ioredis(idle.port);
        try {
          await within(10_000, "connect", client.connect());
          assertEquals(await client.get(KEYS[0]), data.get(KEYS[0]));
          const from = idle.process.stderr.length;
          await within(10_000, "sipdir closing the idle connection", once(client, "close"));
          await idle.process.waitFor(/disconnected \(idle\)/, 10_000, from);
          await within(10_000, "ready again", once(client, "ready"));
          assertEquals(await client.get(KEYS[0]), data.get(KEYS[0]));
          assertEquals(
            await client.mget(...KEYS.slice(0, 6)),
            KEYS.slice(0, 6).map(data.get, data),
          );
        } finally {
          client.disconnect();
        }
      });
    } finally {
      await idle.stop();
    }

    const guarded = await RedisSipdir.start(data, { password: PASSWORD });
    try {
      await t.step("password: right works, wrong WRONGPASS, none NOAUTH", async () => {
        const right = ioredis(guarded.port, { password: PASSWORD });
        try {
          await within(10_000, "connect with the password", right.connect());
          assertEquals(await right.get(KEYS[0]), data.get(KEYS[0]));
        } finally {
          right.disconnect();
        }
        const wrong = ioredis(guarded.port, { password: "wrong", retryStrategy: () => null });
        const error = once(wrong, "error");
        await within(10_000, "connect with a wrong password", wrong.connect()).catch(() => {});
        const [reason] = await within(10_000, "the error", error) as [Error];
        wrong.disconnect();
        assertOk(/^WRONGPASS/.test(reason.message), `wrong password: ${reason.message}`);
        // Without a password, the ready check's INFO gets NOAUTH: a fatal error.
        const none = ioredis(guarded.port, { retryStrategy: () => null });
        const noAuthError = once(none, "error");
        await within(10_000, "connect with no password", none.connect()).catch(() => {});
        const [noAuth] = await within(10_000, "the error", noAuthError) as [Error];
        none.disconnect();
        assertOk(/NOAUTH Authentication required\./.test(noAuth.message), noAuth.message);
      });
    } finally {
      await guarded.stop();
    }
  },
});
