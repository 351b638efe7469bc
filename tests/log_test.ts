import { getLogger } from "@logtape/logtape";
import { assertEquals, assertOk } from "./assert.ts";
import { closeLogging, setupLogging } from "../lib/operations/log.ts";

/** Collects what a console sink writes. */
function memoryConsole() {
  const decoder = new TextDecoder();
  const console = {
    text: "",
    writeSync(p: Uint8Array): number {
      // Partial writes must be retried by the sink.
      const n = Math.min(p.length, 7);
      console.text += decoder.decode(p.subarray(0, n));
      return n;
    },
  };
  return console;
}

const LINE =
  /^(DEBUG|INFO|WARNING|ERROR|FATAL) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z testhost sipdir\[4242\]: (.*)$/;

Deno.test("log: lines read LEVEL timestamp host program[pid]: message", async () => {
  const console = memoryConsole();
  await setupLogging({ console, host: "testhost", pid: 4242 });
  try {
    const logger = getLogger(["sipdir", "test"]);
    logger.info("listening on {address}", { address: "127.0.0.1:1234" });
    logger.warn("plain warning");
    logger.debug("not shown without --verbose");
  } finally {
    await closeLogging();
  }
  const lines = console.text.trimEnd().split("\n");
  assertEquals(lines.length, 2, console.text);
  assertEquals(lines.map((line) => line.match(LINE)?.slice(1)), [
    ["INFO", "listening on 127.0.0.1:1234"],
    ["WARNING", "plain warning"],
  ]);
});

Deno.test("log: verbose shows debug; control characters from clients are escaped", async () => {
  const console = memoryConsole();
  await setupLogging({ console, host: "testhost", pid: 4242, verbose: true });
  try {
    getLogger(["sipdir", "server"]).debug("{peer} {aor} miss", {
      peer: "10.0.0.1:5",
      aor: "evil\x1b[2J\nINFO fake",
    });
  } finally {
    await closeLogging();
  }
  const lines = console.text.trimEnd().split("\n");
  assertEquals(lines.length, 1, console.text);
  const [, level, message] = lines[0].match(LINE)!;
  assertEquals(level, "DEBUG");
  assertOk(message.startsWith("10.0.0.1:5 evil") && !message.includes("\x1b"), message);
});

Deno.test("log: --log writes to the file instead of the console", async () => {
  const console = memoryConsole();
  const path = await Deno.makeTempFile();
  try {
    await setupLogging({ console, file: path, host: "testhost", pid: 4242 });
    try {
      getLogger(["sipdir"]).error("reload failed: {message}", { message: "regs:3: bad" });
    } finally {
      await closeLogging();
    }
    const text = await Deno.readTextFile(path);
    assertEquals(text.trimEnd().match(LINE)?.slice(1), ["ERROR", "reload failed: regs:3: bad"]);
    assertEquals(console.text, "");
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("log: a log file that cannot be opened is an error at setup", async () => {
  let failed = false;
  try {
    await setupLogging({ file: "/nonexistent-dir/sipdir.log" });
  } catch {
    failed = true;
  } finally {
    await closeLogging();
  }
  assertOk(failed);
});

Deno.test("log: --log-format json writes one JSON object a line, properties as fields", async () => {
  const console = memoryConsole();
  await setupLogging({ console, host: "testhost", pid: 4242, verbose: true, format: "json" });
  try {
    getLogger(["sipdir", "line"]).debug("{peer} {aor} {result}", {
      peer: "10.0.0.1:5",
      aor: 'evil"\n{"level":"FATAL"}',
      result: "miss",
    });
    getLogger(["sipdir"]).info("listening on {address}", { address: "127.0.0.1:1234" });
  } finally {
    await closeLogging();
  }
  const lines = console.text.trimEnd().split("\n");
  assertEquals(lines.length, 2, console.text);
  const [request, listening] = lines.map((line) => JSON.parse(line));
  assertEquals(
    [request.host, request.pid, request.level, request.logger, request.peer, request.result],
    ["testhost", 4242, "DEBUG", "sipdir.line", "10.0.0.1:5", "miss"],
  );
  assertEquals(request.aor, 'evil"\n{"level":"FATAL"}');
  assertOk(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(request["@timestamp"]));
  assertEquals([listening.level, listening.address], ["INFO", "127.0.0.1:1234"]);
  assertOk(listening.message.includes("127.0.0.1:1234"));
});
