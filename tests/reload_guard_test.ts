/**
 * The reload guard, as a process: a new dump with far fewer entries than the
 * data being served is refused (an empty or truncated export), logged at
 * ERROR and counted, and the old data keeps answering.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { Dataset, LineClient, SipdirProcess, tempFile } from "./helpers.ts";

const DATA = new Dataset(1000, 14);
/** The first `share` of the dump, cut at a line boundary, as a half-finished copy leaves it. */
const cut = (share: number) => DATA.aors.slice(0, Math.round(DATA.aors.length * share));
const textOf = (aors: string[]) => aors.map((aor) => DATA.answers.get(aor)! + "\n").join("");

/** Reloads and waits for the verdict: "reloaded" or "refused"; returns the log line. */
async function reload(sipdir: SipdirProcess): Promise<string> {
  const from = sipdir.stderr.length;
  sipdir.kill("SIGHUP");
  return (await sipdir.waitFor(/^.*(reloaded|reload refused).*$/m, 20_000, from))[0];
}

/** Asserts which AORs are served now: `served` are answered, `gone` get an empty line. */
async function assertServing(port: number, served: string[], gone: string[]): Promise<void> {
  const client = await LineClient.connect(port);
  try {
    const requests = [...served.slice(-3), ...gone.slice(-3)];
    await client.send(requests.join("\n") + "\n");
    assertEquals(await client.lines(requests.length), [
      ...served.slice(-3).map((aor) => DATA.answers.get(aor)!),
      ...gone.slice(-3).map(() => ""),
    ]);
  } finally {
    client.close();
  }
}

async function withDump(
  args: string[],
  fn: (sipdir: SipdirProcess, port: number, path: string) => Promise<void>,
): Promise<void> {
  const path = await tempFile(DATA.text);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", ...args]);
  try {
    await fn(sipdir, await sipdir.port(), path);
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
}

Deno.test("reload guard: an empty file and a 10% cut are refused at ERROR, counted, old data kept", async () => {
  await withDump([], async (sipdir, port, path) => {
    await Deno.writeTextFile(path, "");
    const empty = await reload(sipdir);
    assertOk(empty.startsWith("ERROR "), empty);
    assertOk(
      empty.includes(`reload refused, still serving the previous data: ${path} has 0 entries`),
      empty,
    );
    assertOk(empty.includes("of the 1000 being served (--reload-min-ratio)"), empty);
    await assertServing(port, DATA.aors, []);

    await Deno.writeTextFile(path, textOf(cut(0.1)));
    const tenth = await reload(sipdir);
    assertOk(tenth.startsWith("ERROR ") && tenth.includes(`${path} has 100 entries`), tenth);
    await assertServing(port, DATA.aors, []);

    const counters = await sipdir.counters();
    assertEquals(counters.reloadRefusals, 2);
    assertEquals(counters.reloads, 0);
    assertEquals(counters.reloadFailures, 0);
  });
});

Deno.test("reload guard: 60% is accepted; a refusal then a good dump serves the good one", async () => {
  await withDump([], async (sipdir, port, path) => {
    const sixty = cut(0.6);
    await Deno.writeTextFile(path, textOf(sixty));
    const accepted = await reload(sipdir);
    assertOk(accepted.startsWith("INFO ") && accepted.includes("reloaded"), accepted);
    assertOk(accepted.includes(": 600 entries"), accepted);
    await assertServing(port, sixty, DATA.aors.slice(600));

    // Now 600 are served: 250 is under half of them.
    await Deno.writeTextFile(path, textOf(DATA.aors.slice(0, 250)));
    assertOk((await reload(sipdir)).includes("reload refused"));
    await assertServing(port, sixty, DATA.aors.slice(600));

    await Deno.writeTextFile(path, DATA.text);
    assertOk((await reload(sipdir)).includes(": 1000 entries"));
    await assertServing(port, DATA.aors, []);

    const counters = await sipdir.counters();
    assertEquals([counters.reloads, counters.reloadRefusals], [2, 1]);
  });
});

Deno.test("reload guard: --reload-min-ratio 0 accepts an empty file", async () => {
  await withDump(["--reload-min-ratio", "0"], async (sipdir, port, path) => {
    await Deno.writeTextFile(path, "");
    const line = await reload(sipdir);
    assertOk(line.includes("reloaded") && line.includes(": 0 entries"), line);
    await assertServing(port, [], DATA.aors);
    assertEquals((await sipdir.counters()).reloadRefusals, 0);
  });
});

Deno.test("reload guard: start-up is not guarded; an empty file starts with a warning", async () => {
  const path = await tempFile("");
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"]);
  try {
    const port = await sipdir.port();
    assertOk(/WARNING .* has no registrations/.test(sipdir.stderr), sipdir.stderr);
    await assertServing(port, [], DATA.aors);
    // Anything is more than nothing: the first real dump is accepted.
    await Deno.writeTextFile(path, DATA.text);
    assertOk((await reload(sipdir)).includes(": 1000 entries"));
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
});
