/**
 * Clients of the old server that send an AOR without a line end, over
 * sockets: a pause ends their request, until they send a line end.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { LineProtocol } from "../lib/protocol/line.ts";
import type { Server } from "../lib/transport/server.ts";
import { LineClient, record, withServer } from "./helpers.ts";

const A = record("0142e2fa3543cb32bf000100620002");
const B = record("b2");
const DATA = `${A}\n${B}\n`;
const WAIT = 60;

const withBareServer = (
  bareWait: number,
  fn: (server: Server, port: number) => Promise<void>,
) =>
  withServer(DATA, {
    listen: [{ port: 0, protocol: new LineProtocol({ maxLine: 64, bareWait }) }],
  }, fn);

/** Sends `text` and returns the answer line and how long it took. */
async function ask(client: LineClient, text: string): Promise<[string, number]> {
  const start = performance.now();
  await client.send(text);
  const line = await client.line();
  return [line, performance.now() - start];
}

Deno.test("bare requests: a hit and a miss without line end are answered after the pause", async () => {
  await withBareServer(WAIT, async (_server, port) => {
    const client = await LineClient.connect(port);
    const [hit, took] = await ask(client, "0142e2fa3543cb32bf000100620002");
    assertEquals(hit, A);
    assertOk(took >= WAIT - 5 && took < WAIT + 500, `answered after ${took} ms`);
    const [miss] = await ask(client, " nobody\t");
    assertEquals(miss, "");
    client.close();
  });
});

Deno.test("bare requests: three in a row on one connection, each answered within the wait and a margin", async () => {
  await withBareServer(WAIT, async (server, port) => {
    const client = await LineClient.connect(port);
    for (const [request, answer] of [["b2", B], ["nobody", ""], ["b2", B]]) {
      const [line, took] = await ask(client, request);
      assertEquals(line, answer);
      assertOk(took < WAIT + 500, `${request} answered after ${took} ms`);
    }
    assertEquals(server.counters.lookups, 3);
    client.close();
  });
});

Deno.test("bare requests: one split into two writes a few ms apart is answered once, whole", async () => {
  await withBareServer(WAIT, async (server, port) => {
    const client = await LineClient.connect(port);
    client.conn.setNoDelay(true);
    await client.send("0142e2fa3543");
    await new Promise((resolve) => setTimeout(resolve, 5));
    assertEquals((await ask(client, "cb32bf000100620002"))[0], A);
    assertEquals(server.counters.lookups, 1);
    client.close();
  });
});

Deno.test("bare requests: once a client sent a line end, a line split by a long pause waits for its end", async () => {
  await withBareServer(WAIT, async (server, port) => {
    const client = await LineClient.connect(port);
    client.conn.setNoDelay(true);
    assertEquals((await ask(client, "b2\n"))[0], B);
    await client.send("0142e2fa3543");
    await new Promise((resolve) => setTimeout(resolve, WAIT * 4));
    assertEquals((await ask(client, "cb32bf000100620002\n"))[0], A);
    assertEquals(server.counters.lookups, 2);
    client.close();
  });
});

Deno.test("bare requests: --bare-wait 0 waits for a line end, as before", async () => {
  await withBareServer(0, async (server, port) => {
    const client = await LineClient.connect(port);
    await client.send("b2");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertEquals(server.counters.lookups, 0);
    await client.send("\n");
    assertEquals(await client.line(), B);
    client.close();
  });
});

Deno.test("bare requests: max-line applies; the idle timeout counts them as activity", async () => {
  await withServer(DATA, {
    idleTimeout: 400,
    listen: [{ port: 0, protocol: new LineProtocol({ maxLine: 64, bareWait: WAIT }) }],
  }, async (server, port) => {
    const long = await LineClient.connect(port);
    await long.send("x".repeat(65));
    assertEquals((await long.rest()).length, 0);
    long.close();
    assertEquals(server.counters.overlongLines, 1);
    // A bare request every 250 ms keeps a 400 ms timeout from firing.
    const client = await LineClient.connect(port);
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 250 - WAIT));
      assertEquals((await ask(client, "b2"))[0], B);
    }
    assertEquals(server.counters.idleClosed, 0);
    client.close();
  });
});

Deno.test("bare requests: a line end that arrives after its request was answered completes it, late", async () => {
  // A lost segment and its retransmit: the AOR, then its line end long after
  // the bare wait, with the next request behind it. Each request is answered
  // once, in order, and nothing shifts.
  await withBareServer(WAIT, async (server, port) => {
    const client = await LineClient.connect(port);
    client.conn.setNoDelay(true);
    assertEquals((await ask(client, "b2"))[0], B);
    await new Promise((resolve) => setTimeout(resolve, WAIT * 2));
    assertEquals((await ask(client, "\n0142e2fa3543cb32bf000100620002\n"))[0], A);
    assertEquals((await ask(client, "nobody\n"))[0], "");
    assertEquals(server.counters.lookups, 3);
    client.close();
  });
});
