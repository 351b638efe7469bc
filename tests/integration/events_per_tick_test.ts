/**
 * The serving thread's runtime polls at most 64 socket events per epoll pass
 * (`lib/serving_thread.ts`): what keeps hundreds of busy connections served
 * evenly. Deno reads the setting from its environment when it creates a
 * runtime, which is undocumented: this test watches the thread that answers
 * a lookup, with strace, and fails the day the setting no longer reaches it.
 * Needs strace and the right to trace (root, in CI).
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Dataset, LineClient, SipdirProcess, tempFile } from "../helpers.ts";

const DATA = new Dataset(100, 3);

/** strace -f on `pid` while `during` runs; returns its lines. */
async function traced(pid: number, during: () => Promise<void>): Promise<string[]> {
  const strace = new Deno.Command("strace", {
    args: [
      ...["-f", "-qq", "-s", "256"],
      ...["-e", "trace=epoll_wait,epoll_pwait,sendto,write", "-p", String(pid)],
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const output = strace.output();
  // strace attaches to each thread before it traces it; give it a moment to.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await during();
  await new Promise((resolve) => setTimeout(resolve, 200));
  strace.kill("SIGINT");
  return new TextDecoder().decode((await output).stderr).split("\n");
}

/** The thread id that strace puts before a line, `[pid N]`. */
function threadOf(line: string): string | undefined {
  return line.match(/^\[pid +(\d+)\]/)?.[1];
}

Deno.test("serving thread: its epoll takes at most 64 events a pass", async () => {
  const path = await tempFile(DATA.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"]);
  try {
    const port = await sipdir.port();
    const aor = DATA.aors[0];
    const lines = await traced(sipdir.child.pid, async () => {
      const client = await LineClient.connect(port);
      for (let i = 0; i < 5; i++) {
        await client.send(`${aor}\n`);
        assertEquals(await client.line(), DATA.answer(aor));
      }
      client.close();
    });
    // The thread that wrote the answers: [pid N] sendto(fd, "{\"addressOfRecord\":\"AOR\"…
    const writer = lines.find((line) =>
      /^\[pid +\d+\] (sendto|write)\(/.test(line) && line.includes(aor)
    );
    assertOk(writer, `no thread wrote an answer:\n${lines.slice(0, 40).join("\n")}`);
    const tid = threadOf(writer);
    // Its polls that completed: `epoll_wait(fd, [events…], MAXEVENTS, TIMEOUT) = n`.
    const polls = lines.filter((line) => threadOf(line) === tid && line.includes("epoll_"))
      .map((line) => line.match(/\], (\d+), -?\d+\) += /)?.[1])
      .filter((max) => max !== undefined);
    assertOk(polls.length > 0, `thread ${tid} never polled:\n${lines.slice(0, 40).join("\n")}`);
    assertEquals([...new Set(polls)], ["64"], `thread ${tid}'s epoll_wait maxevents`);
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
});
