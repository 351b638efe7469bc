/**
 * Corners where sipdir's Redis port once answered otherwise than Redis 7.0:
 * raw bytes sent to a sipdir process, its replies compared with what Redis
 * 7.0.15 (Debian 12's redis-server, an empty database) answered to the same
 * bytes, recorded here. Found while testing the clients (no client tested
 * sends these), fixed since. Each has a control: the well-formed
 * counterpart, answered as Redis does.
 */

import { assertEquals } from "../assert.ts";
import { RedisDataset, RedisSipdir } from "./redis_clients.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A command as RESP: an array of bulk strings. */
function resp(...args: string[]): string {
  return `*${args.length}\r\n${
    args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("")
  }`;
}

/**
 * Sends `request` on a new connection and reads until `expected.length`
 * bytes came, the server closed, or 3 s passed; returns what came, with
 * "<EOF>" appended when the server closed.
 */
async function exchange(port: number, request: string, expected: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(request));
    let received = "";
    const deadline = Date.now() + 3000;
    const buf = new Uint8Array(65536);
    while (received.length < expected.length && Date.now() < deadline) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        conn.read(buf),
        new Promise<"timeout">((resolve) => {
          timer = setTimeout(() => resolve("timeout"), deadline - Date.now());
        }),
      ]);
      clearTimeout(timer);
      if (n === "timeout") break;
      if (n === null) return received + "<EOF>";
      received += decoder.decode(buf.subarray(0, n));
    }
    return received;
  } finally {
    conn.close();
  }
}

/** Each case: what is sent, and Redis 7.0.15's reply to it (recorded). */
interface Case {
  name: string;
  send: string;
  redis: string;
}

const QUEUED = "+QUEUED\r\n";
const EXECABORT = "-EXECABORT Transaction discarded because of previous errors.\r\n";

const CONTROLS: Case[] = [
  {
    name: "MULTI, CLIENT GETNAME, EXEC: queued, then run",
    send: resp("MULTI") + resp("CLIENT", "GETNAME") + resp("EXEC"),
    redis: `+OK\r\n${QUEUED}*1\r\n$-1\r\n`,
  },
  {
    name: "SELECT 0",
    send: resp("SELECT", "0"),
    redis: "+OK\r\n",
  },
  {
    name: "*1 $4 PING",
    send: "*1\r\n$4\r\nPING\r\n",
    redis: "+PONG\r\n",
  },
];

const STRICT: Case[] = [
  {
    // A subcommand's arity and name are checked before MULTI queues it: Redis
    // refuses it at once and EXEC aborts the transaction.
    name: "MULTI, CLIENT GETNAME extra, EXEC: refused at once, EXECABORT",
    send: resp("MULTI") + resp("CLIENT", "GETNAME", "extra") + resp("EXEC"),
    redis: "+OK\r\n-ERR wrong number of arguments for 'client|getname' command\r\n" + EXECABORT,
  },
  {
    // As above, for an unknown subcommand (CLIENT, CONFIG, COMMAND alike).
    name: "MULTI, CONFIG NOPE, EXEC: refused at once, EXECABORT",
    send: resp("MULTI") + resp("CONFIG", "NOPE") + resp("EXEC"),
    redis: "+OK\r\n-ERR unknown subcommand 'NOPE'. Try CONFIG HELP.\r\n" + EXECABORT,
  },
  {
    // Redis's string2ll refuses leading zeros and "-0".
    name: "SELECT 00 and SELECT -0: not integers",
    send: resp("SELECT", "00") + resp("SELECT", "-0"),
    redis: "-ERR value is not an integer or out of range\r\n".repeat(2),
  },
  {
    // As above, for HELLO's protocol version.
    name: "HELLO 03: not an integer",
    send: resp("HELLO", "03"),
    redis: "-ERR Protocol version is not an integer or out of range\r\n",
  },
  {
    // Leading zeros in the *count and $length lines: a protocol error, closed.
    name: "*01 (a count with a leading zero): protocol error",
    send: "*01\r\n$4\r\nPING\r\n",
    redis: "-ERR Protocol error: invalid multibulk length\r\n<EOF>",
  },
  {
    // As above, for a bulk length.
    name: "$04 (a length with a leading zero): protocol error",
    send: "*1\r\n$04\r\nPING\r\n",
    redis: "-ERR Protocol error: invalid bulk length\r\n<EOF>",
  },
];

Deno.test("Redis 7.0 compatibility: controls, answered as Redis 7.0.15 does", async (t) => {
  const sipdir = await RedisSipdir.start(RedisDataset.generated(10, 71));
  try {
    for (const c of CONTROLS) {
      await t.step(c.name, async () => {
        assertEquals(await exchange(sipdir.port, c.send, c.redis), c.redis);
      });
    }
  } finally {
    await sipdir.stop();
  }
});

for (const c of STRICT) {
  Deno.test({
    name: `Redis 7.0 compatibility: ${c.name}`,
    async fn() {
      const sipdir = await RedisSipdir.start(RedisDataset.generated(10, 71));
      try {
        assertEquals(await exchange(sipdir.port, c.send, c.redis), c.redis);
      } finally {
        await sipdir.stop();
      }
    },
  });
}
