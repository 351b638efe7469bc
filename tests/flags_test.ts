import { assertEquals, assertThrows } from "./assert.ts";
import { HELP, parseFlags, USAGE, UsageError, VERSION } from "../lib/cli/flags.ts";

Deno.test("flags: defaults match the old server's", () => {
  assertEquals(parseFlags([]), {
    help: false,
    version: false,
    data: "data/regs",
    ip: "127.0.0.1",
    port: 1234,
    log: undefined,
    redisPort: undefined,
    redisIp: "127.0.0.1",
    redisPasswordFile: undefined,
    protectedMode: true,
    redisTimeout: 0,
    redisMaxArguments: 1048576,
    redisMaxCommand: 1048576,
    httpPort: undefined,
    httpIp: "127.0.0.1",
    logFormat: "text",
    verbose: false,
    timeout: 10_000,
    maxLine: 1024,
    maxClients: 10_000,
    maxPending: 65536,
    maxClientMemory: 268435456,
    bareWait: 100,
    watch: false,
    journal: undefined,
    reloadMinRatio: 0.5,
    inspectorGuard: true,
  });
});

Deno.test("flags: short and long forms", () => {
  const short = parseFlags([
    "-d",
    "r.jsonl",
    "-i",
    "0.0.0.0",
    "-p",
    "5060",
    "-l",
    "x.log",
    "-v",
    "-h",
  ]);
  const long = parseFlags([
    "--data",
    "r.jsonl",
    "--ip",
    "0.0.0.0",
    "--port",
    "5060",
    "--log",
    "x.log",
    "--verbose",
    "--help",
  ]);
  assertEquals(short, long);
  assertEquals([short.data, short.ip, short.port, short.log, short.verbose, short.help], [
    "r.jsonl",
    "0.0.0.0",
    5060,
    "x.log",
    true,
    true,
  ]);
});

Deno.test("flags: inline values and limits", () => {
  const flags = parseFlags([
    "--port=0",
    "-dfile",
    "--timeout",
    "0.25",
    "--max-line=2048",
    "--max-clients",
    "50",
    "--max-pending",
    "65536",
    "--version",
  ]);
  assertEquals(flags.port, 0);
  assertEquals(flags.data, "file");
  assertEquals(flags.timeout, 250);
  assertEquals(flags.maxLine, 2048);
  assertEquals(flags.maxClients, 50);
  assertEquals(flags.maxPending, 65536);
  assertEquals(flags.version, true);
});

Deno.test("flags: the last of a repeated option wins", () => {
  assertEquals(parseFlags(["-p", "1", "-p", "2"]).port, 2);
});

Deno.test("flags: usage errors say what is wrong", () => {
  const cases: [string[], string][] = [
    [["--x"], 'Unknown option "--x"'],
    [["-z"], 'Unknown option "-z"'],
    [["--port"], 'Option "--port" needs a value'],
    [["-d", "-v"], 'Option "-d" needs a value'],
    [["--data="], 'Option "--data" needs a non-empty value'],
    [["--verbose=yes"], 'Option "--verbose" takes no value'],
    [["serve"], 'Unexpected argument "serve"'],
    [["-p", "http"], 'Invalid value "http" for "--port": expected a whole number from 0 to 65535'],
    [
      ["-p", "65536"],
      'Invalid value "65536" for "--port": expected a whole number from 0 to 65535',
    ],
    [["-p", "-1"], 'Option "-p" needs a value'],
    [["-p", "1.5"], 'Invalid value "1.5" for "--port": expected a whole number from 0 to 65535'],
    [["--timeout", "0"], 'Invalid value "0" for "--timeout": expected seconds from 0.001 to 86400'],
    [
      ["--timeout", "1e3"],
      'Invalid value "1e3" for "--timeout": expected seconds from 0.001 to 86400',
    ],
    [
      ["--max-line", "0"],
      'Invalid value "0" for "--max-line": expected a whole number from 1 to 1073741824',
    ],
    [
      ["--max-clients", "many"],
      'Invalid value "many" for "--max-clients": expected a whole number from 1 to 1073741824',
    ],
  ];
  for (const [args, message] of cases) {
    const error = assertThrows(() => parseFlags(args), UsageError);
    assertEquals(error.message, message, `for ${JSON.stringify(args)}`);
  }
});

Deno.test("flags: help lists every option, usage names them all", () => {
  for (
    const option of [
      "-d, --data",
      "-i, --ip",
      "-p, --port",
      "-l, --log",
      "-v, --verbose",
      "--timeout",
      "--max-line",
      "--max-clients",
      "--max-pending",
      "-h, --help",
      "--version",
    ]
  ) {
    assertEquals(HELP.includes(option), true, option);
  }
  for (const option of ["-d FILE", "-i ADDR", "-l FILE", "-p PORT", "[-v]", "[-h]", "--timeout"]) {
    assertEquals(USAGE.includes(option), true, option);
  }
  assertEquals(/^\d+\.\d+\.\d+$/.test(VERSION), true);
});
