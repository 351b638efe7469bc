/**
 * Protected mode seen from another host: a network namespace joined to this
 * one by a veth pair, with redis-cli inside it. Without a password, the Redis
 * port answers only loopback clients; a client from the namespace gets
 * `-DENIED` and the end. A password, or `--no-protected-mode`, lets it in.
 * Needs root (CI runs it as root).
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Dataset, SipdirProcess, tempFile } from "../helpers.ts";
import { NetworkNamespace } from "../../testing/netns.ts";

const DATA = new Dataset(100, 5);
const AOR = DATA.aors[0];

/** Starts sipdir with its Redis port on every address; returns it and the port. */
async function start(path: string, args: string[]): Promise<[SipdirProcess, number]> {
  const sipdir = await SipdirProcess.start([
    "-d",
    path,
    "-p",
    "0",
    "--redis-port",
    "0.0.0.0:0",
    ...args,
  ]);
  await sipdir.port();
  const port = await sipdir.redisPort();
  return [sipdir, port];
}

async function stop(sipdir: SipdirProcess): Promise<void> {
  sipdir.kill("SIGTERM");
  await sipdir.exit();
}

/** redis-cli on this host, over loopback. */
async function localCli(args: string[]): Promise<string> {
  const output = await new Deno.Command("redis-cli", { args, stdout: "piped", stderr: "piped" })
    .output();
  return new TextDecoder().decode(output.stdout).trim();
}

Deno.test("protected mode: a client from another address is denied unless there is a password", async (t) => {
  const path = await tempFile(DATA.text);
  const passwordFile = await tempFile("s3cret\n");
  const namespace = await NetworkNamespace.create();
  const remote = (port: number, ...args: string[]) =>
    namespace.run(["redis-cli", "-h", namespace.hostAddress, "-p", String(port), ...args]);
  try {
    await t.step("no password: loopback served, the namespace denied", async () => {
      const [sipdir, port] = await start(path, []);
      try {
        await sipdir.waitFor(/protected mode: loopback clients only/);
        assertEquals(await localCli(["-p", String(port), "GET", AOR]), DATA.answer(AOR));
        const denied = await remote(port, "GET", AOR);
        assertOk(
          denied.stdout.includes("DENIED sipdir is running in protected mode"),
          denied.stdout,
        );
        assertOk(!denied.stdout.includes(AOR), denied.stdout);
        assertEquals((await sipdir.counters()).denied, 1);
        await sipdir.waitFor(/connection\(s\) to the redis port refused, last from 10\.213\./);
      } finally {
        await stop(sipdir);
      }
    });
    await t.step("a password: the namespace is asked for it, and served with it", async () => {
      const [sipdir, port] = await start(path, ["--redis-password-file", passwordFile]);
      try {
        const anonymous = await remote(port, "GET", AOR);
        assertOk(anonymous.stdout.includes("NOAUTH"), anonymous.stdout);
        const served = await remote(port, "--no-auth-warning", "-a", "s3cret", "GET", AOR);
        assertEquals(served.stdout.trim(), DATA.answer(AOR));
        assertEquals((await sipdir.counters()).denied, 0);
      } finally {
        await stop(sipdir);
      }
    });
    await t.step("--no-protected-mode: the namespace served without a password", async () => {
      const [sipdir, port] = await start(path, ["--no-protected-mode"]);
      try {
        const served = await remote(port, "GET", AOR);
        assertEquals(served.stdout.trim(), DATA.answer(AOR));
      } finally {
        await stop(sipdir);
      }
    });
  } finally {
    await namespace.close();
    await Deno.remove(path);
    await Deno.remove(passwordFile);
  }
});
