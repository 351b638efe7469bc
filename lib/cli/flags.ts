/**
 * Command-line flags, compatible with the Python server's (`-h`, `-d`, `-i`,
 * `-l`, `-p`, `-v`), plus sipdir's limits.
 *
 * @module
 */

import { parseArgs } from "node:util";
import config from "../../deno.json" with { type: "json" };
import { DEFAULTS as D } from "../limits.ts";

/** sipdir's version, from deno.json. */
export const VERSION: string = config.version;

/** The one-line synopsis printed with usage errors. */
export const USAGE: string =
  "Usage: sipdir [-h] [-d FILE] [-i ADDR] [-l FILE] [-p PORT] [-v] [--timeout SECONDS] " +
  "[--redis-port [ADDR:]PORT] [--redis-password-file FILE] [--no-protected-mode] " +
  "[--redis-timeout SECONDS] [--redis-max-args N] [--redis-max-command BYTES] " +
  "[--http-port [ADDR:]PORT] [--log-format text|json] " +
  "[--max-line BYTES] [--max-clients N] [--max-pending BYTES] [--max-client-memory BYTES] " +
  "[--bare-wait SECONDS] " +
  "[--watch] [--journal FILE] [--reload-min-ratio RATIO] " +
  "[--no-inspector-guard] [--version]";

/** The full `--help` text. */
export const HELP: string = `${USAGE}

Serves SIP registrations from a JSON Lines dump over TCP. Send an address of
record (AOR) and a newline; get its registration as one line of JSON, or an
empty line when it is unknown. Many requests per connection, pipelined or not.

Options:
  -d, --data FILE          registrations, one JSON object a line (default: data/regs)
  -i, --ip ADDR            address to listen on (default: ${D.hostname})
  -p, --port PORT          TCP port of the line protocol, 0 for any free one
                           (default: ${D.port})
      --redis-port [ADDR:]PORT
                           also answer the Redis protocol (GET aor …) on PORT,
                           0 for any free one, on ADDR ([::1] for IPv6) or
                           --ip (default: off)
      --redis-password-file FILE
                           the Redis port requires AUTH with the password in FILE
      --no-protected-mode  without a password, answer Redis clients from any
                           address, not only loopback ones
      --redis-timeout SECONDS
                           close Redis connections idle this long between
                           commands; 0 keeps them, as Redis does (default: 0)
      --redis-max-args N   most arguments in one Redis command (default: ${D.redisMaxArguments})
      --redis-max-command BYTES
                           most memory the arguments of one Redis command (other
                           than GET, MGET, EXISTS) and a MULTI queue may take
                           (default: ${D.redisMaxCommand})
      --http-port [ADDR:]PORT
                           serve /metrics, /healthz and /readyz over HTTP on
                           PORT, 0 for any free one, on ADDR or --ip (default: off)
  -l, --log FILE           log to FILE instead of the console
      --log-format FORMAT  text (default), or json: one JSON object a line
  -v, --verbose            log every connection and request, and counters each minute
      --timeout SECONDS    close connections idle this long (default: ${D.idleTimeout / 1000})
      --max-line BYTES     longest request line; a longer one closes its
                           connection (default: ${D.maxLine})
      --max-clients N      connections served at once; more are refused (default: ${D.maxClients})
      --max-pending BYTES  answers buffered for a client before they are written
                           and its reading pauses (default: ${D.maxPending})
      --max-client-memory BYTES
                           memory all clients may hold together (buffers,
                           Redis commands and queues); past it, those holding
                           the most are closed (default: ${D.maxClientMemory})
      --bare-wait SECONDS  a client that has sent no line end yet gets its bytes
                           answered as one request after this silence, as the
                           old server did; 0 turns it off (default: ${D.bareWait / 1000})
      --watch              reload when the data file is replaced or rewritten
      --journal FILE       apply the registration changes appended to FILE as
                           they come (see docs/journal.md)
      --reload-min-ratio RATIO
                           refuse a reload that would serve fewer entries than
                           RATIO times those served now; 0 accepts any valid
                           file (default: ${D.reloadMinRatio})
      --no-inspector-guard do not hold 127.0.0.1:9229, where Deno opens a
                           debugger on SIGUSR1 (for debugging only)
  -h, --help               show this help and exit
      --version            show the version and exit

Signals: SIGTERM or SIGINT stop gracefully, SIGHUP reloads the data file,
SIGUSR2 logs the counters. SIGUSR1 would open Deno's debugger on
127.0.0.1:9229; sipdir holds that address so that it cannot.`;

/** The parsed command line. */
export interface Flags {
  /** `-h`: print help and exit. */
  help: boolean;
  /** `--version`: print the version and exit. */
  version: boolean;
  /** `-d`: the data file. */
  data: string;
  /** `-i`: the address to listen on. */
  ip: string;
  /** `-p`: the port, 0 to 65535. */
  port: number;
  /** `--redis-port`'s port, or undefined when the Redis protocol is off. */
  redisPort: number | undefined;
  /** `--redis-port`'s address: its own, or `--ip`. */
  redisIp: string;
  /** `--redis-password-file`. */
  redisPasswordFile: string | undefined;
  /** False with `--no-protected-mode`. */
  protectedMode: boolean;
  /** `--redis-timeout`, in milliseconds; 0 keeps idle Redis connections. */
  redisTimeout: number;
  /** `--redis-max-args`. */
  redisMaxArguments: number;
  /** `--redis-max-command`, in bytes. */
  redisMaxCommand: number;
  /** `--http-port`'s port, or undefined when off. */
  httpPort: number | undefined;
  /** `--http-port`'s address: its own, or `--ip`. */
  httpIp: string;
  /** `-l`: log file, or undefined for the console. */
  log: string | undefined;
  /** `--log-format`. */
  logFormat: "text" | "json";
  /** `-v`: debug logging. */
  verbose: boolean;
  /** `--timeout`, in milliseconds. */
  timeout: number;
  /** `--max-line`, in bytes. */
  maxLine: number;
  /** `--max-clients`. */
  maxClients: number;
  /** `--max-pending`, in bytes. */
  maxPending: number;
  /** `--max-client-memory`, in bytes. */
  maxClientMemory: number;
  /** `--bare-wait`, in milliseconds; 0 is off. */
  bareWait: number;
  /** `--watch`: reload when the data file changes. */
  watch: boolean;
  /** `--journal`: the journal of changes to follow, if any. */
  journal: string | undefined;
  /** `--reload-min-ratio`: 0 to 1. */
  reloadMinRatio: number;
  /** False with `--no-inspector-guard`. */
  inspectorGuard: boolean;
}

/** A bad command line: unknown option, missing or invalid value. Exit status 2. */
export class UsageError extends Error {
  /** Always "UsageError". */
  override name = "UsageError";
}

const OPTIONS = {
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  data: { type: "string", short: "d" },
  ip: { type: "string", short: "i" },
  port: { type: "string", short: "p" },
  log: { type: "string", short: "l" },
  verbose: { type: "boolean", short: "v" },
  timeout: { type: "string" },
  "max-line": { type: "string" },
  "max-clients": { type: "string" },
  "max-pending": { type: "string" },
  "max-client-memory": { type: "string" },
  "bare-wait": { type: "string" },
  "log-format": { type: "string" },
  "redis-port": { type: "string" },
  "redis-password-file": { type: "string" },
  "no-protected-mode": { type: "boolean" },
  "redis-timeout": { type: "string" },
  "redis-max-args": { type: "string" },
  "redis-max-command": { type: "string" },
  "http-port": { type: "string" },
  "reload-min-ratio": { type: "string" },
  watch: { type: "boolean" },
  journal: { type: "string" },
  "no-inspector-guard": { type: "boolean" },
} as const;

type OptionName = keyof typeof OPTIONS;

/**
 * Parses command-line arguments; throws a {@linkcode UsageError} for anything
 * it does not understand.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * import assert from "node:assert/strict";
 * const flags = parseFlags(["-p", "5060", "--data", "/var/lib/sipdir/regs"]);
 * assert.deepEqual([flags.port, flags.data, flags.timeout], [5060, "/var/lib/sipdir/regs", 10_000]);
 * ```
 */
export function parseFlags(args: readonly string[]): Flags {
  // Non-strict parsing yields tokens, so that every error gets our wording.
  const { tokens } = parseArgs({
    args: [...args],
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const given: Partial<Record<OptionName, string | true>> = {};
  for (const token of tokens) {
    if (token.kind === "positional") {
      throw new UsageError(`Unexpected argument "${token.value}"`);
    }
    if (token.kind !== "option") continue;
    if (!Object.hasOwn(OPTIONS, token.name)) {
      throw new UsageError(`Unknown option "${token.rawName}"`);
    }
    const name = token.name as OptionName;
    if (OPTIONS[name].type === "boolean") {
      if (token.value !== undefined) {
        throw new UsageError(`Option "${token.rawName}" takes no value`);
      }
      given[name] = true;
    } else {
      const value = token.value;
      // As with argparse, "-d -v" is a missing value, not a file named "-v".
      if (value === undefined || (!token.inlineValue && value.startsWith("-") && value !== "-")) {
        throw new UsageError(`Option "${token.rawName}" needs a value`);
      }
      given[name] = value;
    }
  }
  const text = (name: OptionName, fallback: string): string => {
    const value = given[name];
    if (value === "") throw new UsageError(`Option "--${name}" needs a non-empty value`);
    return typeof value === "string" ? value : fallback;
  };
  const ip = text("ip", D.hostname);
  const redis = given["redis-port"] === undefined
    ? undefined
    : endpoint("redis-port", text("redis-port", ""), ip);
  const http = given["http-port"] === undefined
    ? undefined
    : endpoint("http-port", text("http-port", ""), ip);
  return {
    help: given.help === true,
    version: given.version === true,
    data: text("data", "data/regs"),
    ip,
    port: integer("port", text("port", String(D.port)), 0, 65535),
    log: given.log === undefined ? undefined : text("log", ""),
    redisPort: redis?.port,
    redisIp: redis?.hostname ?? ip,
    httpPort: http?.port,
    httpIp: http?.hostname ?? ip,
    redisPasswordFile: given["redis-password-file"] === undefined
      ? undefined
      : text("redis-password-file", ""),
    protectedMode: given["no-protected-mode"] !== true,
    redisTimeout: seconds("redis-timeout", text("redis-timeout", "0"), 0),
    redisMaxArguments: integer(
      "redis-max-args",
      text("redis-max-args", String(D.redisMaxArguments)),
      16,
      2 ** 31 - 1,
    ),
    redisMaxCommand: integer(
      "redis-max-command",
      text("redis-max-command", String(D.redisMaxCommand)),
      1024,
      1 << 30,
    ),
    logFormat: choice("log-format", text("log-format", "text"), ["text", "json"] as const),
    verbose: given.verbose === true,
    timeout: seconds("timeout", text("timeout", String(D.idleTimeout / 1000))),
    maxLine: integer("max-line", text("max-line", String(D.maxLine)), 1, 1 << 30),
    maxClients: integer("max-clients", text("max-clients", String(D.maxClients)), 1, 1 << 30),
    maxPending: integer("max-pending", text("max-pending", String(D.maxPending)), 1, 1 << 30),
    maxClientMemory: integer(
      "max-client-memory",
      text("max-client-memory", String(D.maxClientMemory)),
      1 << 20,
      2 ** 40,
    ),
    bareWait: seconds("bare-wait", text("bare-wait", String(D.bareWait / 1000)), 0),
    watch: given.watch === true,
    journal: given.journal === undefined ? undefined : text("journal", ""),
    reloadMinRatio: ratio(
      "reload-min-ratio",
      text("reload-min-ratio", String(D.reloadMinRatio)),
    ),
    inspectorGuard: given["no-inspector-guard"] !== true,
  };
}

/**
 * `[ADDR:]PORT`: a port, with the address to listen on when one is given
 * (`[::1]:6379` for an IPv6 one), else `ip`.
 */
function endpoint(name: string, value: string, ip: string): { hostname: string; port: number } {
  const colon = value.lastIndexOf(":");
  if (colon < 0) return { hostname: ip, port: integer(name, value, 0, 65535) };
  let hostname = value.slice(0, colon);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  else if (hostname.includes(":")) hostname = "";
  if (hostname === "") {
    throw new UsageError(
      `Invalid value "${value}" for "--${name}": expected PORT or ADDR:PORT ` +
        `(an IPv6 address in brackets: [::1]:6379)`,
    );
  }
  return { hostname, port: integer(name, value.slice(colon + 1), 0, 65535) };
}

function integer(name: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(
      `Invalid value "${value}" for "--${name}": expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

function choice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(
      `Invalid value "${value}" for "--${name}": expected ${choices.join(" or ")}`,
    );
  }
  return value as T;
}

function ratio(name: string, value: string): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  if (!(n >= 0 && n <= 1)) {
    throw new UsageError(`Invalid value "${value}" for "--${name}": expected a number from 0 to 1`);
  }
  return n;
}

function seconds(name: string, value: string, min = 0.001): number {
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN;
  // At least a millisecond (or 0 where that means "off"); at most a day,
  // which setInterval handles well.
  if (!(n >= min && n <= 86_400) || (n > 0 && n < 0.001)) {
    throw new UsageError(
      `Invalid value "${value}" for "--${name}": expected seconds from ${min} to 86400`,
    );
  }
  return Math.round(n * 1000);
}
