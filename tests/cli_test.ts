/**
 * The program as a process, started with exactly the permissions that
 * `deno task compile` bakes into the binary.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { EXAMPLE_RECORD } from "../testing/gen_regs.ts";
import { USAGE } from "../lib/cli/flags.ts";
import { LineClient, record, runSipdir, runtimeFlags, SipdirProcess, tempFile } from "./helpers.ts";

const EXAMPLE_AOR = "0142e2fa3543cb32bf000100620002";
const DATA = new URL("../data/regs", import.meta.url).pathname;

Deno.test("cli: start and compile tasks use the same flags and narrow permissions", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const compile = runtimeFlags(config.tasks.compile);
  assertEquals(runtimeFlags(config.tasks.start), compile);
  assertOk(compile.length > 0);
  for (const flag of compile) assertOk(!/^--allow-all|^-A$/.test(flag), flag);
  assertOk(!/\s-A\s|--allow-all/.test(config.tasks.compile));
});

Deno.test("cli: the compile task embeds every worker module that lib/ starts", async () => {
  // deno compile leaves out modules only reached through `new Worker(...)`;
  // the binary would fail at its first load without them.
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const included = [...config.tasks.compile.matchAll(/--include[= ](\S+)/g)].map((m) => m[1]);
  const workers: string[] = [];
  const lib = new URL("../lib/", import.meta.url);
  const walk = async (dir: URL): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
      if (entry.isDirectory) await walk(url);
      else if (entry.name.endsWith(".ts")) {
        const text = await Deno.readTextFile(url);
        for (const m of text.matchAll(/new URL\("(\.[^"]+)", import\.meta\.url\)/g)) {
          const target = new URL(m[1], url);
          if (/Worker/.test(text) && target.pathname.endsWith("_worker.ts")) {
            workers.push(target.pathname.slice(new URL("../", lib).pathname.length));
          }
        }
      }
    }
  };
  await walk(lib);
  assertOk(workers.length > 0, "no worker module found");
  for (const worker of workers) assertOk(included.includes(worker), `${worker} not in --include`);
});

Deno.test("cli: --help lists every flag and exits 0", async () => {
  const { code, stdout } = await runSipdir(["--help"]);
  assertEquals(code, 0);
  for (
    const flag of [
      "--data",
      "--ip",
      "--log",
      "--port",
      "--verbose",
      "--timeout",
      "--max-line",
      "--max-clients",
      "--max-pending",
      "--help",
      "--version",
    ]
  ) {
    assertOk(stdout.includes(flag), flag);
  }
  assertEquals((await runSipdir(["-h"])).stdout, stdout);
});

Deno.test("cli: --version", async () => {
  const { code, stdout } = await runSipdir(["--version"]);
  assertEquals(code, 0);
  assertOk(/^sipdir \d+\.\d+\.\d+\n$/.test(stdout), stdout);
});

Deno.test("cli: a bad flag prints the error and the usage line, exit 2", async () => {
  const { code, stderr, stdout } = await runSipdir(["--bogus"]);
  assertEquals(code, 2);
  assertEquals(stderr, `sipdir: Unknown option "--bogus"\n${USAGE}\n`);
  assertEquals(stdout, "");
  const port = await runSipdir(["-p", "99999"]);
  assertEquals(port.code, 2);
  assertOk(port.stderr.startsWith('sipdir: Invalid value "99999" for "--port"'), port.stderr);
});

Deno.test("cli: a bad data line stops start-up with file and line, exit 1, no stack trace", async () => {
  const path = await tempFile(`${record("a")}\n\n{"addressOfRecord": "b",}\n`);
  try {
    const { code, stderr } = await runSipdir(["--data", path, "--port", "0"]);
    assertEquals(code, 1);
    assertOk(stderr.includes(`${path}:3: invalid JSON: unexpected '}' at column 25`), stderr);
    assertOk(!stderr.includes("    at "), stderr);
    assertEquals(stderr.trimEnd().split("\n").length, 1, stderr);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("cli: a missing data file is named, exit 1", async () => {
  const { code, stderr } = await runSipdir(["-d", "/nonexistent/regs", "-p", "0"]);
  assertEquals(code, 1);
  assertOk(stderr.includes("/nonexistent/regs: cannot open: no such file"), stderr);
});

Deno.test("cli: an address in use is an error, exit 1", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { code, stderr } = await runSipdir(["-d", DATA, "-p", String(busy.addr.port)]);
    assertEquals(code, 1);
    assertOk(stderr.includes(`cannot listen on 127.0.0.1:${busy.addr.port}`), stderr);
  } finally {
    busy.close();
  }
});

Deno.test("cli: serves the bundled data; SIGTERM stops it with status 0", async () => {
  const sipdir = await SipdirProcess.start(["-d", DATA, "-p", "0"]);
  try {
    const port = await sipdir.port();
    assertOk(
      /loaded \d+ entries \(\d+ duplicates\) from .*regs: \d+ bytes in \d+ ms/.test(sipdir.stderr),
      sipdir.stderr,
    );
    const client = await LineClient.connect(port);
    await client.send(`${EXAMPLE_AOR}\nnot-there\n`);
    assertEquals(await client.lines(2), [EXAMPLE_RECORD, ""]);
    client.close();
  } finally {
    sipdir.kill("SIGTERM");
  }
  const { code, stderr } = await sipdir.exit();
  assertEquals(code, 0, stderr);
  assertOk(stderr.includes("stopped"), stderr);
});

Deno.test("cli: SIGTERMs that keep coming while it stops do not kill it: status 0", async () => {
  const sipdir = await SipdirProcess.start(["-d", DATA, "-p", "0"]);
  await sipdir.port();
  // As a supervisor that repeats its stop request does, as fast as it can,
  // up to the very exit. The loop holds this thread, so the exited process
  // stays unreaped (a zombie) and its pid cannot go to another meanwhile.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !sipdir.exited()) sipdir.kill("SIGTERM");
  const { code, stderr } = await sipdir.exit();
  assertEquals(code, 0, stderr);
  assertOk(stderr.includes("stopped"), stderr);
});

Deno.test("cli: an empty data file starts with a warning", async () => {
  const path = await tempFile("");
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0"]);
  try {
    const port = await sipdir.port();
    assertOk(/WARNING .* has no registrations/.test(sipdir.stderr), sipdir.stderr);
    const client = await LineClient.connect(port);
    await client.send(`${EXAMPLE_AOR}\n`);
    assertEquals(await client.line(), "");
    client.close();
  } finally {
    sipdir.kill("SIGINT");
    assertEquals((await sipdir.exit()).code, 0);
    await Deno.remove(path);
  }
});

Deno.test("cli: --log with -v writes connections and requests to the file", async () => {
  const log = await Deno.makeTempFile();
  const sipdir = await SipdirProcess.start(["-d", DATA, "-p", "0", "-v", "-l", log]);
  try {
    const client = await LineClient.connect(await sipdir.port());
    await client.send(`${EXAMPLE_AOR}\nunknown-aor\n`);
    assertEquals(await client.lines(2), [EXAMPLE_RECORD, ""]);
    client.close();
  } finally {
    sipdir.kill("SIGTERM");
  }
  const { code, stderr } = await sipdir.exit();
  assertEquals(code, 0);
  assertEquals(stderr, "");
  const text = await Deno.readTextFile(log);
  await Deno.remove(log);
  const lines = text.trimEnd().split("\n");
  for (const line of lines) {
    assertOk(/^(DEBUG|INFO|WARNING|ERROR|FATAL) \S+Z \S+ sipdir\[\d+\]: /.test(line), line);
  }
  assertOk(lines.some((line) => /DEBUG .*: 127\.0\.0\.1:\d+ connected$/.test(line)), text);
  assertOk(
    lines.some((line) =>
      line.endsWith(`127.0.0.1:${line.match(/127\.0\.0\.1:(\d+)/)?.[1]} ${EXAMPLE_AOR} hit`)
    ),
    text,
  );
  assertOk(lines.some((line) => / unknown-aor miss$/.test(line)), text);
  assertOk(lines.some((line) => / disconnected \(/.test(line)), text);
  assertOk(lines.some((line) => /INFO .*counters: accepted=1 /.test(line)), text);
});

Deno.test("cli: --log-format json, with -v: every line is a JSON object with its fields", async () => {
  const sipdir = await SipdirProcess.start(["-d", DATA, "-p", "0", "-v", "--log-format", "json"]);
  try {
    const port = Number((await sipdir.waitFor(/"address":"\S+:(\d+)"/))[1]);
    const client = await LineClient.connect(port);
    await client.send(`${EXAMPLE_AOR}\nnobody\n`);
    await client.lines(2);
    client.close();
    await sipdir.waitFor(/"aor":"nobody","result":"miss"/);
  } finally {
    sipdir.kill("SIGTERM");
  }
  const { code, stderr } = await sipdir.exit();
  assertEquals(code, 0);
  const records = stderr.trimEnd().split("\n").map((line) => JSON.parse(line));
  assertOk(records.length > 5);
  for (const record of records) assertOk(record.level && record.message && record["@timestamp"]);
  assertOk(records.some((r) => r.aor === EXAMPLE_AOR && r.result === "hit" && r.peer));
});

Deno.test("cli: SIGHUP and SIGUSR2 during start-up are ignored; SIGTERM then stops it, exit 0", async () => {
  // The data comes through a FIFO that nobody writes: the load waits.
  const dir = await Deno.makeTempDir({ prefix: "sipdir-cli-" });
  const fifo = `${dir}/regs`;
  await new Deno.Command("mkfifo", { args: [fifo] }).output();
  const sipdir = await SipdirProcess.start(["-d", fifo, "-p", "0", "--http-port", "0"]);
  try {
    await sipdir.waitFor(/HTTP \(.*\) on/);
    sipdir.kill("SIGHUP");
    await sipdir.waitFor(/still loading .*: signal ignored/);
    sipdir.kill("SIGUSR2");
    sipdir.kill("SIGTERM");
    const { code, stderr } = await sipdir.exit();
    assertEquals(code, 0, stderr);
    assertOk(/stopping during start-up[\s\S]*stopped/.test(stderr), stderr);
  } finally {
    sipdir.kill("SIGKILL");
    await Deno.remove(dir, { recursive: true });
  }
});
