/**
 * What the server benchmarks share (`bench/compare.ts`, `bench/journal_load.ts`,
 * `bench/reload_under_load.ts`, `bench/redis_benchmark.ts`): their command lines and entry point,
 * processes and their clean-up, the CPU time and memory of a process, the C load generator
 * (`bench/loadgen.c`), sipdir started as the compiled binary runs, redis-server started and
 * loaded with the same data, the tables they print, and a few small helpers.
 *
 * Nothing here holds state of its own: what must be stopped on the way out is a
 * {@linkcode Cleanups} that the entry point ({@linkcode runMain}) creates and passes along.
 *
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import { compileFlags, LAUNCH_ENV, mainPath } from "../testing/sipdir_process.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Seconds each load generator run warms up before it measures. */
export const WARMUP_SECONDS = 1;

/**
 * A `sh -c` script that gives the command in its arguments as many descriptors as it may have
 * (the hard limit), for a server with a thousand connections: `sh -c RAISE_FD_LIMIT sh cmd …`.
 */
export const RAISE_FD_LIMIT = 'ulimit -n $(ulimit -Hn); exec "$@"';

// ---------------------------------------------------------------------------------------------
// The command line and the entry point

/** A flag of a benchmark's command line: how it is read, shown in the usage, and its value. */
export interface Flag<T> {
  /** `string`: it takes a value; `boolean`: it does not (as node:util's `parseArgs` has it). */
  readonly type: "string" | "boolean";
  /** Its one-letter name, if any (the usage shows it instead of the long one). */
  readonly short?: string;
  /** What stands for its value in the usage (`N`, `FILE`); none for a switch. */
  readonly placeholder?: string;
  /** Its value when not given, as it would be written. */
  readonly fallback?: string;
  /** What it is for, in the usage; a newline starts another line. */
  readonly help: string;
  /**
   * Its value from what was read (undefined: not given, and no fallback); throws a
   * {@linkcode UsageError} when that will not do.
   */
  value(read: string | boolean | undefined): T;
}

/** How a flag is named in the usage: its one-letter name, and what stands for its value. */
export interface FlagNames {
  /** Its one-letter name. */
  short?: string;
  /** What stands for its value in the usage. */
  placeholder?: string;
}

/** What is wrong with a command line (see {@linkcode CommandLine.parse}). */
export class UsageError extends Error {}

/** A flag whose value is a positive integer. */
export function integerFlag(fallback: string, help: string, names?: FlagNames): Flag<number> {
  return { type: "string", placeholder: "N", ...names, fallback, help, value: integer };
}

/** A flag whose value is a comma-separated list of positive integers. */
export function integerListFlag(
  fallback: string,
  help: string,
  names?: FlagNames,
): Flag<number[]> {
  const value = (read: string | boolean | undefined) => String(read).split(",").map(integer);
  return { type: "string", placeholder: "LIST", ...names, fallback, help, value };
}

/** A flag whose value is a number of seconds, above 0 (or, with `orZero`, 0 too). */
export function secondsFlag(
  fallback: string,
  help: string,
  names?: FlagNames & { orZero?: boolean },
): Flag<number> {
  const value = (read: string | boolean | undefined) => {
    const n = Number(read);
    if (n > 0 || (names?.orZero && n === 0)) return n;
    const what = names?.orZero ? "number of seconds" : "positive number of seconds";
    throw new UsageError(`wants a ${what}, not ${read}`);
  };
  return { type: "string", placeholder: "SECONDS", short: names?.short, fallback, help, value };
}

/** A flag whose value is a comma-separated list of some of `choices`. */
export function choicesFlag<const T extends string>(
  choices: readonly T[],
  fallback: string,
  help: string,
): Flag<T[]> {
  const value = (read: string | boolean | undefined) =>
    String(read).split(",").map((item) => {
      if ((choices as readonly string[]).includes(item)) return item as T;
      throw new UsageError(`wants some of ${choices.join(", ")}, not ${item}`);
    });
  return { type: "string", placeholder: "LIST", fallback, help, value };
}

/** A flag whose value is its text (`fallback` when not given). */
export function textFlag(fallback: string, help: string, names?: FlagNames): Flag<string> {
  return { type: "string", placeholder: "TEXT", ...names, fallback, help, value: String };
}

/** A flag whose value is its text, or undefined when not given. */
export function optionalFlag(help: string, names?: FlagNames): Flag<string | undefined> {
  const value = (read: string | boolean | undefined) => read === undefined ? read : String(read);
  return { type: "string", placeholder: "TEXT", ...names, help, value };
}

/** A flag without a value: whether it was given. */
export function switchFlag(help: string, short?: string): Flag<boolean> {
  return { type: "boolean", short, help, value: (read) => read === true };
}

/** `-n ENTRIES`: how many registrations to generate. */
export function entriesFlag(fallback: string): Flag<number> {
  return integerFlag(fallback, "registrations to generate", { short: "n", placeholder: "ENTRIES" });
}

/** `-d SECONDS`: how long each load generator run measures. */
export function runSecondsFlag(fallback: string): Flag<number> {
  const help = `measured seconds per run, after a ${WARMUP_SECONDS} s warm-up`;
  return secondsFlag(fallback, help, { short: "d" });
}

function integer(read: string | boolean | undefined): number {
  const n = Number(read);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`wants a positive integer, not ${read}`);
  return n;
}

/** The values of a {@linkcode CommandLine}'s flags, by the flags' names. */
export type FlagValues<F extends Record<string, Flag<unknown>>> = {
  [K in keyof F]: F[K] extends Flag<infer T> ? T : never;
};

/**
 * A benchmark's command line: its flags, its usage (made from them), and what is wrong with a
 * command line said on stderr with the usage (exit status 2).
 */
export class CommandLine<const F extends Record<string, Flag<unknown>>> {
  readonly #script: string;
  readonly #flags: F;

  /**
   * The command line of `script` (its path from the repository's root, `bench/compare.ts`),
   * which takes `flags` and `-h`/`--help`. A flag's long name is its name in kebab case
   * (`inFlight`: `--in-flight`).
   */
  constructor(script: string, flags: F) {
    this.#script = script;
    this.#flags = flags;
  }

  /** The usage text: each flag, what it is for and its fallback. */
  get usage(): string {
    const lines = [`usage: deno run -A ${this.#script} [options]`, ""];
    const say = (name: string, help: string) => {
      const [first, ...more] = help.split("\n");
      lines.push(
        `  ${name.padEnd(21)} ${first}`,
        ...more.map((line) => `${" ".repeat(24)}${line}`),
      );
    };
    for (const [long, flag] of this.#named()) {
      const name = (flag.short ? `-${flag.short}` : `--${long}`) +
        (flag.placeholder && flag.type === "string" ? ` ${flag.placeholder}` : "");
      say(
        name,
        flag.fallback === undefined ? flag.help : `${flag.help} (default ${flag.fallback})`,
      );
    }
    say("-h, --help", "this text");
    return lines.join("\n");
  }

  /**
   * The value of each flag in `args`, by the flag's name. `-h` and `--help` print the usage and
   * exit; a flag it does not know, a positional argument or a value a flag will not take is a
   * usage error. A first `--` is passed over: `deno task NAME -- …` passes it on.
   */
  parse(args: string[]): FlagValues<F> {
    if (args[0] === "--") args = args.slice(1);
    const options: ParseArgsOptionsConfig = { help: { type: "boolean", short: "h" } };
    for (const [long, { type, short, fallback }] of this.#named()) {
      options[long] = {
        type,
        ...(short ? { short } : {}),
        ...(fallback ? { default: fallback } : {}),
      };
    }
    let values: Record<string, string | boolean | undefined>;
    try {
      values = parseArgs({ args, options }).values as typeof values;
    } catch (error) {
      this.error(error instanceof Error ? error.message : String(error));
    }
    if (values.help) {
      console.log(this.usage);
      Deno.exit(0);
    }
    const result: Record<string, unknown> = {};
    for (const [long, flag, key] of this.#named()) {
      try {
        result[key] = flag.value(values[long]);
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        this.error(`${flag.short ? `-${flag.short}` : `--${long}`} ${error.message}`);
      }
    }
    return result as FlagValues<F>;
  }

  /** Says `message` and the usage on stderr; exits with status 2. */
  error(message: string): never {
    const program = this.#script.slice(this.#script.lastIndexOf("/") + 1).replace(/\.ts$/, "");
    console.error(`${program}: ${message}\n${this.usage}`);
    Deno.exit(2);
  }

  /** The flags: long name, flag, and name in the values. */
  #named(): [string, Flag<unknown>, string][] {
    return Object.entries(this.#flags).map(([key, flag]) => [
      key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`),
      flag,
      key,
    ]);
  }
}

/**
 * Runs a benchmark's `main` with a fresh {@linkcode Cleanups} and exits with the status it
 * returns. When it throws, stops what is left and exits with status 1, saying why (as `program`);
 * when it was interrupted, the signal handler has already said so, and it exits.
 */
export async function runMain(
  program: string,
  main: (cleanups: Cleanups) => Promise<number>,
): Promise<void> {
  const cleanups = new Cleanups();
  try {
    Deno.exit(await main(cleanups));
  } catch (error) {
    // Interrupted, a run fails because its load generator was stopped: the handler says so and
    // exits.
    if (!cleanups.interrupted) {
      await cleanups.runAll();
      console.error(`${program}: ${error instanceof Error ? error.message : error}`);
      Deno.exit(1);
    }
  }
}

/** A program a benchmark may need. */
export type Tool = "cc" | "redis-server" | "redis-benchmark";

/** The Debian package of each {@linkcode Tool}. */
const TOOL_PACKAGES: Readonly<Record<Tool, string>> = {
  "cc": "gcc",
  "redis-server": "redis-server",
  "redis-benchmark": "redis-tools",
};

/** Exits, saying so as `program` and what to install, unless every one of `tools` can be run. */
export async function requireTools(program: string, tools: Tool[]): Promise<void> {
  for (const tool of tools) {
    try {
      await run(tool, ["--version"]);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      const hint = `Debian: apt-get install ${TOOL_PACKAGES[tool]}`;
      console.error(`${program}: ${tool} is not on PATH (${hint})`);
      Deno.exit(1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

/**
 * What must be stopped on the way out (servers, load generators), newest first; and the signal
 * handlers that stop it all on Ctrl-C or SIGTERM. One per run, created by the entry point.
 */
export class Cleanups {
  readonly #stops: (() => Promise<void>)[] = [];
  #interrupted = false;

  /** Whether Ctrl-C or SIGTERM arrived (its handler stops everything and exits). */
  get interrupted(): boolean {
    return this.#interrupted;
  }

  /** Adds `stop`; {@linkcode Cleanups.runAll} calls it before those added earlier. */
  add(stop: () => Promise<void>): void {
    this.#stops.unshift(stop);
  }

  /** Removes `stop` (its process ended by itself); nothing happens if it is not there. */
  remove(stop: () => Promise<void>): void {
    const at = this.#stops.indexOf(stop);
    if (at >= 0) this.#stops.splice(at, 1);
  }

  /** Calls every stop, newest first, one after the other, and forgets them. */
  async runAll(): Promise<void> {
    for (const stop of this.#stops.splice(0)) await stop();
  }

  /**
   * On SIGINT or SIGTERM: says `message` on stderr, stops everything and exits with status 130.
   */
  stopOnSignals(message: string): void {
    const handler = async () => {
      this.#interrupted = true;
      console.error(message);
      await this.runAll();
      Deno.exit(130);
    };
    Deno.addSignalListener("SIGINT", handler);
    Deno.addSignalListener("SIGTERM", handler);
  }
}

/** A function that stops `child` (SIGTERM, SIGKILL after 5 s) and waits for its exit. */
export function stopper(child: Deno.ChildProcess): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      signal(child, "SIGTERM");
      const timer = setTimeout(() => signal(child, "SIGKILL"), 5000);
      await child.status;
      clearTimeout(timer);
    })();
    return stopping;
  };
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Already exited.
  }
}

/** A free TCP port on 127.0.0.1 (free when asked). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (up to 60 s). */
export async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 600; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

/**
 * The process, `root` or one of its descendants, that holds the socket listening on `port`: the
 * one whose CPU time counts (not a wrapping shell).
 */
export async function listeningPid(port: number, root: number): Promise<number> {
  const inode = await listeningInode(port);
  for (const pid of await processTree(root)) {
    const fds = `/proc/${pid}/fd`;
    for await (const entry of Deno.readDir(fds)) {
      const target = await Deno.readLink(`${fds}/${entry.name}`).catch(() => "");
      if (target === `socket:[${inode}]`) return pid;
    }
  }
  throw new Error(`no process under ${root} listens on port ${port}`);
}

/** The inode of the socket listening on `port`, from /proc/net/tcp{,6}. */
async function listeningInode(port: number): Promise<string> {
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const row of (await Deno.readTextFile(table)).split("\n").slice(1)) {
      const fields = row.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== "0A") continue; // 0A: LISTEN
      const local = fields[1];
      if (parseInt(local.slice(local.lastIndexOf(":") + 1), 16) === port) return fields[9];
    }
  }
  throw new Error(`nothing listens on port ${port}`);
}

/** `pid` and its descendants. */
async function processTree(pid: number): Promise<number[]> {
  const pids = [pid];
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    const children = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`)
      .catch(() => "");
    for (const child of children.split(" ").filter((c) => c !== "")) {
      pids.push(...await processTree(Number(child)));
    }
  }
  return pids;
}

/** CPU time (user + system, all threads) of `pid` so far, in clock ticks. */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // The command name, in parentheses, may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime: fields 14 and 15 of proc(5)
}

/** Clock ticks per second, the unit of {@linkcode cpuTicks} (`getconf CLK_TCK`). */
export async function clockTicksPerSecond(): Promise<number> {
  const { code, stdout } = await run("getconf", ["CLK_TCK"]);
  const ticks = Number(stdout.trim());
  if (code !== 0 || !(ticks > 0)) throw new Error(`getconf CLK_TCK answered ${stdout}`);
  return ticks;
}

/** Resident memory of `pid`, in bytes. */
export async function residentBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const line = status.split("\n").find((l) => l.startsWith("VmRSS:"));
  if (line === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

// ---------------------------------------------------------------------------------------------
// The load generator

/** Compiles bench/loadgen.c into `work` unless the binary there is newer; returns its path. */
export async function buildLoadgen(work: string): Promise<string> {
  const source = new URL("./loadgen.c", import.meta.url).pathname;
  const binary = `${work}/loadgen`;
  const built = await Deno.stat(binary).catch(() => undefined);
  const sourceTime = (await Deno.stat(source)).mtime!.getTime();
  if (built && built.mtime!.getTime() >= sourceTime) return binary;
  console.log(`compiling ${source}`);
  const { code, stderr } = await run("cc", ["-O2", "-o", binary, source]);
  if (code !== 0) throw new Error(`cc failed:\n${stderr}`);
  return binary;
}

/** What every load generator run of a benchmark shares. */
export interface LoadgenSetup {
  /** The load generator's binary ({@linkcode buildLoadgen}). */
  loadgen: string;
  /** Its keys: one AOR a line, every one of them in the data. */
  keys: string;
  /** Measured seconds, after a warm-up of {@linkcode WARMUP_SECONDS}. */
  seconds: number;
  /** Clock ticks per second ({@linkcode clockTicksPerSecond}). */
  clockTicks: number;
}

/**
 * The load generator built into `work` ({@linkcode buildLoadgen}) to ask for `keys` for `seconds`
 * a run, and this machine's clock ticks.
 */
export async function loadgenSetup(
  work: string,
  keys: string,
  seconds: number,
): Promise<LoadgenSetup> {
  return {
    loadgen: await buildLoadgen(work),
    keys,
    seconds,
    clockTicks: await clockTicksPerSecond(),
  };
}

/** `line`: sipdir's line protocol; `redis`: RESP, sipdir's Redis port or Redis itself. */
export type Protocol = "line" | "redis";

/** One load generator run: whom it drives, how, and whose CPU time it samples. */
export interface LoadgenRun extends LoadgenSetup {
  /** The server's port on 127.0.0.1. */
  port: number;
  /** `line`: sipdir's line protocol; `redis`: `GET` over RESP. */
  mode: Protocol;
  /** Connections. */
  connections: number;
  /** Requests each connection keeps in flight. */
  inFlight: number;
  /** The process whose CPU time is sampled during the measured window (the server's). */
  cpuPid: number;
}

/** What one load generator run printed. */
export interface LoadResult {
  /** Answers completed in the measured window. */
  ops: number;
  /** … per second. */
  opsPerS: number;
  /** Latency percentiles and maximum, in µs, from the request's write to its answer's read. */
  p50Us: number;
  /** See {@linkcode LoadResult.p50Us}. */
  p99Us: number;
  /** See {@linkcode LoadResult.p50Us}. */
  p999Us: number;
  /** See {@linkcode LoadResult.p50Us}. */
  maxUs: number;
  /** Wrong answers (empty, nil, an error, or not naming the AOR asked). */
  errors: number;
}

/** A load generator run's result and the server's CPU time per lookup meanwhile. */
export interface LoadgenResult extends LoadResult {
  /** The server's CPU time (user + system, all threads) per lookup in the measured window, µs. */
  cpuUsPerLookup: number;
}

/**
 * Runs the load generator as `options` say and samples the CPU time of `options.cpuPid` during
 * its measured window. Throws when the run fails; when it ran but got wrong answers, says so on
 * stderr and counts them in `errors`. The load generator is stopped by `cleanups` meanwhile.
 */
export async function runLoadgen(options: LoadgenRun, cleanups: Cleanups): Promise<LoadgenResult> {
  const args = [
    ...["-h", "127.0.0.1", "-p", String(options.port), "-k", options.keys, "-m", options.mode],
    ...["-c", String(options.connections), "-P", String(options.inFlight)],
    ...["-d", String(options.seconds), "-w", String(WARMUP_SECONDS)],
  ];
  const child = new Deno.Command(options.loadgen, { args, stdout: "piped", stderr: "piped" })
    .spawn();
  const stop = stopper(child);
  cleanups.add(stop);
  const started = performance.now();
  const output = child.output();
  // Stop sampling a little before the load generator stops: a late timer must not count idle time.
  const margin = Math.min(0.25, options.seconds / 10);
  const cpu = await cpuDuring(
    options.cpuPid,
    started + WARMUP_SECONDS * 1000,
    started + (WARMUP_SECONDS + options.seconds - margin) * 1000,
  );
  const { code, stdout, stderr } = await output;
  cleanups.remove(stop);
  const text = decoder.decode(stdout);
  // Status 1: it ran, and some answers were wrong; anything else is a failure of the run.
  if (code !== 0 && !(code === 1 && text.startsWith("ops="))) {
    throw new Error(`loadgen ${args.join(" ")} failed (${code}):\n${decoder.decode(stderr)}`);
  }
  if (code === 1) console.error(decoder.decode(stderr).trimEnd());
  const load = parseLoadResult(text);
  const cpuSecondsPerSecond = cpu.ticks / options.clockTicks / cpu.seconds;
  return {
    ...load,
    cpuUsPerLookup: load.opsPerS > 0 ? cpuSecondsPerSecond / load.opsPerS * 1e6 : NaN,
  };
}

/**
 * The CPU ticks `pid` used between two moments (`performance.now()` times), and the seconds
 * actually between the two samples. The window lies inside the load generator's measured one,
 * where the load is steady, so ticks per second over ops per second is the CPU per lookup.
 */
async function cpuDuring(
  pid: number,
  from: number,
  to: number,
): Promise<{ ticks: number; seconds: number }> {
  await sleep(from - performance.now());
  const before = await cpuTicks(pid);
  const t0 = performance.now();
  await sleep(to - performance.now());
  const after = await cpuTicks(pid);
  return { ticks: after - before, seconds: (performance.now() - t0) / 1000 };
}

/** Parses the load generator's `ops=N ops_per_s=N p50_us=N …` line. */
function parseLoadResult(text: string): LoadResult {
  const fields = new Map(
    text.trim().split(" ").map((pair) => pair.split("=") as [string, string]),
  );
  const number = (name: string) => {
    const value = Number(fields.get(name));
    if (!fields.has(name) || Number.isNaN(value)) throw new Error(`no ${name} in: ${text}`);
    return value;
  };
  return {
    ops: number("ops"),
    opsPerS: number("ops_per_s"),
    p50Us: number("p50_us"),
    p99Us: number("p99_us"),
    p999Us: number("p999_us"),
    maxUs: number("max_us"),
    errors: number("errors"),
  };
}

// ---------------------------------------------------------------------------------------------
// sipdir

/** Collects a child's stderr into a log file and a string, so that it never blocks on a pipe. */
class StderrLog {
  text = "";
  readonly #reader: ReadableStreamDefaultReader<string>;
  readonly #file: Deno.FsFile;
  #ended = false;

  constructor(stream: ReadableStream<Uint8Array>, file: Deno.FsFile) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
    this.#file = file;
  }

  /**
   * Reads until `pattern` matches what was logged; returns the match. Fails when the stream ends
   * first, or after `timeout` ms (the first start on a fresh machine may fetch npm packages).
   */
  async waitFor(pattern: RegExp, timeout = 120_000): Promise<RegExpMatchArray> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`sipdir logged no ${pattern} in ${timeout} ms`)),
        timeout,
      );
    });
    try {
      for (;;) {
        const match = this.text.match(pattern);
        if (match) return match;
        if (this.#ended || !await Promise.race([this.#readChunk(), timedOut])) {
          throw new Error(`sipdir exited without logging ${pattern}:\n${this.text}`);
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Keeps reading (and logging) until the stream ends. */
  async drain(): Promise<void> {
    while (await this.#readChunk());
  }

  async #readChunk(): Promise<boolean> {
    const chunk = await this.#reader.read();
    if (chunk.done) {
      this.#ended = true;
      this.#file.close();
      return false;
    }
    this.text += chunk.value;
    await writeAll(this.#file, encoder.encode(chunk.value));
    return true;
  }
}

/** What {@linkcode startSipdir} starts sipdir with. */
export interface SipdirOptions {
  /** The dump (`--data`). */
  data: string;
  /**
   * More arguments, after `--data FILE --ip 127.0.0.1 --port 0`. With `--redis-port` or
   * `--http-port`, the port it logs for them is learnt too.
   */
  args?: string[];
  /** Where its log (stderr) goes. */
  logFile: string;
}

/** A sipdir started by {@linkcode startSipdir}. */
export interface SipdirServer {
  /** The process that listens: the one whose CPU time is measured. */
  pid: number;
  /** Its ports on 127.0.0.1, as it logged them (`redis` and `http` only when asked for). */
  ports: { line: number; redis?: number; http?: number };
  /** The entries it logged it loaded. */
  loaded: number;
  /** Stops it (SIGTERM, SIGKILL after 5 s) and waits for its exit. */
  stop(): Promise<void>;
}

/**
 * Starts sipdir as the compiled binary runs (the compile task's flags, the launchers'
 * environment, as many descriptors as it may have), on a free line port of 127.0.0.1 and
 * whatever `options.args` ask for; resolves once it listens, with the ports it logged. It is
 * stopped by `cleanups` until its `stop` is called.
 */
export async function startSipdir(
  options: SipdirOptions,
  cleanups: Cleanups,
): Promise<SipdirServer> {
  const extra = options.args ?? [];
  const args = [
    ...["run", ...await compileFlags(), mainPath()],
    ...["--data", options.data, "--ip", "127.0.0.1", "--port", "0", ...extra],
  ];
  const child = new Deno.Command("sh", {
    args: ["-c", RAISE_FD_LIMIT, "sh", Deno.execPath(), ...args],
    env: { ...LAUNCH_ENV },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = stopper(child);
  cleanups.add(stop);
  const log = new StderrLog(child.stderr, await Deno.create(options.logFile));
  const loaded = Number((await log.waitFor(/loaded (\d+) entries/))[1]);
  const ports: SipdirServer["ports"] = {
    line: Number((await log.waitFor(/listening on \S+:(\d+)/))[1]),
  };
  if (extra.includes("--redis-port")) {
    ports.redis = Number((await log.waitFor(/Redis protocol on \S+:(\d+)/))[1]);
  }
  if (extra.includes("--http-port")) {
    ports.http = Number((await log.waitFor(/HTTP \([^)]*\) on \S+:(\d+)/))[1]);
  }
  // The rest goes to the log file only; losing it would cost nothing but the file.
  log.drain().catch(() => {});
  const pid = await listeningPid(ports.line, child.pid);
  return { pid, ports, loaded, stop };
}

// ---------------------------------------------------------------------------------------------
// Redis

/** A redis-server started by {@linkcode startRedis}. */
export interface RedisServer {
  /** The process that listens: the one whose CPU time is measured. */
  pid: number;
  /** Its port on 127.0.0.1. */
  port: number;
  /** Stops it (SIGTERM, SIGKILL after 5 s) and waits for its exit. */
  stop(): Promise<void>;
}

/**
 * Starts `redis-server` (from PATH) on a free port of 127.0.0.1, without persistence, with as
 * many descriptors as it may have, logging into `logFile`; resolves once it listens. It is
 * stopped by `cleanups` until its `stop` is called.
 */
export async function startRedis(logFile: string, cleanups: Cleanups): Promise<RedisServer> {
  const port = freePort();
  const args = [
    ...["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", String(port)],
    ...["--logfile", logFile],
  ];
  const child = new Deno.Command("sh", {
    args: ["-c", RAISE_FD_LIMIT, "sh", "redis-server", ...args],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = stopper(child);
  cleanups.add(stop);
  await Promise.race([
    waitForPort(port),
    child.status.then((status) => {
      throw new Error(`redis-server exited (${status.code}); see ${logFile}`);
    }),
  ]);
  return { pid: await listeningPid(port, child.pid), port, stop };
}

/**
 * Loads every line of the dump `regs` into the Redis on `port` as `SET aor <the line>`,
 * pipelined over one connection; later lines overwrite earlier ones of the same AOR, as in
 * sipdir. Returns the AORs that repeat.
 */
export async function loadRedis(port: number, regs: string): Promise<string[]> {
  const lines = await readLines(regs);
  const seen = new Set<string>();
  const repeated = new Set<string>();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const reader = new ConnReader(conn);
    const batch = 1000;
    for (let from = 0; from < lines.length; from += batch) {
      const commands = lines.slice(from, from + batch).map((line) => {
        const aor: string = JSON.parse(line).addressOfRecord;
        if (seen.has(aor)) repeated.add(aor);
        seen.add(aor);
        return resp(["SET", aor, line]);
      });
      await writeAll(conn, encoder.encode(commands.join("")));
      for (let i = 0; i < commands.length; i++) {
        const reply = await reader.line();
        if (reply !== "+OK\r") throw new Error(`Redis answered a SET with ${reply}`);
      }
    }
  } finally {
    conn.close();
  }
  return [...repeated];
}

/** The number of keys the Redis on `port` holds (`DBSIZE`). */
export async function redisDbSize(port: number): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await writeAll(conn, encoder.encode(resp(["DBSIZE"])));
    const reply = await new ConnReader(conn).line();
    if (!reply.startsWith(":")) throw new Error(`DBSIZE answered ${reply}`);
    return Number(reply.slice(1));
  } finally {
    conn.close();
  }
}

/** A command as a RESP multibulk, lengths in bytes. */
export function resp(args: string[]): string {
  let text = `*${args.length}\r\n`;
  for (const arg of args) text += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  return text;
}

// ---------------------------------------------------------------------------------------------
// Connections

/** Reads a connection by lines and by byte counts. */
export class ConnReader {
  readonly #conn: Deno.Conn;
  /** Where reads land, reused: only the bytes read are copied out. */
  readonly #chunk = new Uint8Array(1 << 16);
  #buffered = new Uint8Array(0);

  /** Reads `conn` (which it does not close). */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next line, without its LF (a CR before it stays). */
  async line(): Promise<string> {
    for (;;) {
      const end = this.#buffered.indexOf(0x0a);
      if (end >= 0) return decoder.decode(this.#take(end + 1).subarray(0, end));
      await this.#fill();
    }
  }

  /** The next `n` bytes. */
  async bytes(n: number): Promise<Uint8Array> {
    while (this.#buffered.length < n) await this.#fill();
    return this.#take(n);
  }

  #take(n: number): Uint8Array {
    const taken = this.#buffered.slice(0, n);
    this.#buffered = this.#buffered.subarray(n);
    return taken;
  }

  async #fill(): Promise<void> {
    const n = await this.#conn.read(this.#chunk);
    if (n === null) throw new Error("the server closed the connection");
    const joined = new Uint8Array(this.#buffered.length + n);
    joined.set(this.#buffered);
    joined.set(this.#chunk.subarray(0, n), this.#buffered.length);
    this.#buffered = joined;
  }
}

/** A connection to a server on 127.0.0.1 that looks AORs up one at a time. */
export class LookupClient {
  readonly #conn: Deno.Conn;
  readonly #reader: ConnReader;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reader = new ConnReader(conn);
  }

  /** Connects to 127.0.0.1:`port`. */
  static async open(port: number): Promise<LookupClient> {
    return new LookupClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Looks `aor` up over the line protocol: the answer line, without its LF. */
  async lookUp(aor: string): Promise<string> {
    await writeAll(this.#conn, encoder.encode(`${aor}\n`));
    return await this.#reader.line();
  }

  /** `GET key` over RESP: the value, or null for nil. */
  async get(key: string): Promise<string | null> {
    await writeAll(this.#conn, encoder.encode(resp(["GET", key])));
    const header = await this.#reader.line();
    if (header === "$-1\r") return null;
    const length = Number(header.slice(1, -1));
    if (!header.startsWith("$") || !header.endsWith("\r") || !Number.isInteger(length)) {
      throw new Error(`GET ${key} answered ${header}`);
    }
    return decoder.decode((await this.#reader.bytes(length + 2)).subarray(0, length));
  }

  /** Closes the connection. */
  close(): void {
    this.#conn.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The machine and the source

/** The machine a benchmark ran on. */
export interface Machine {
  /** The CPU's model name. */
  cpu: string;
  /** Cores Deno sees. */
  cores: number;
  /** The kernel's release. */
  kernel: string;
  /** `deno --version`'s first line. */
  deno: string;
}

/** Describes this machine. */
export async function describeMachine(): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = cpuinfo.split("\n").find((l) => l.startsWith("model name"));
  const deno = await run(Deno.execPath(), ["--version"]);
  return {
    cpu: model === undefined ? "unknown CPU" : model.slice(model.indexOf(":") + 1).trim(),
    cores: navigator.hardwareConcurrency,
    kernel: (await Deno.readTextFile("/proc/sys/kernel/osrelease")).trim(),
    deno: deno.stdout.split("\n")[0],
  };
}

/** The sipdir that ran: the commit, and how many files differed from it. */
export interface Source {
  /** HEAD's commit, or "unknown". */
  commit: string;
  /** Files `git status` lists (-1 if it failed). */
  uncommittedFiles: number;
}

/**
 * The checkout's commit and its uncommitted files (sipdir runs from the work tree). Read-only:
 * no index refresh, so that it never contends with someone committing meanwhile.
 */
export async function describeSource(): Promise<Source> {
  const root = new URL("..", import.meta.url).pathname;
  const git = (...args: string[]) => run("git", ["--no-optional-locks", "-C", root, ...args]);
  const head = await git("rev-parse", "HEAD").catch(() => undefined);
  const status = await git("status", "--porcelain").catch(() => undefined);
  return {
    commit: head?.code === 0 ? head.stdout.trim() : "unknown",
    uncommittedFiles: status?.code === 0
      ? status.stdout.split("\n").filter((l) => l !== "").length
      : -1,
  };
}

// ---------------------------------------------------------------------------------------------
// Summaries and tables

/** The measures of a load generator run, or their medians over runs. */
export interface LoadMeasures {
  /** Answers per second. */
  opsPerS: number;
  /** Latency percentiles, in µs. */
  p50Us: number;
  /** See {@linkcode LoadMeasures.p50Us}. */
  p99Us: number;
  /** See {@linkcode LoadMeasures.p50Us}. */
  p999Us: number;
  /** The server's CPU time per lookup, in µs. */
  cpuUsPerLookup: number;
  /** Wrong answers (for medians: all the runs' together). */
  errors: number;
}

/** The medians of `runs`' measures, and all their wrong answers. */
export function loadMedians(runs: LoadgenResult[]): LoadMeasures {
  const of = (pick: (run: LoadgenResult) => number) => median(runs.map(pick));
  return {
    opsPerS: of((r) => r.opsPerS),
    p50Us: of((r) => r.p50Us),
    p99Us: of((r) => r.p99Us),
    p999Us: of((r) => r.p999Us),
    cpuUsPerLookup: of((r) => r.cpuUsPerLookup),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

/** A column of a {@linkcode Table} of `T`s: its heading, its width, and its cell in a row. */
export type TableColumn<T> = readonly [
  heading: string,
  width: number,
  cell: (row: T) => string | number,
];

/** The columns of a load generator run's measures, or their medians (errors apart). */
export const LOAD_COLUMNS: readonly TableColumn<LoadMeasures>[] = [
  ["ops/s", 9, (m) => Math.round(m.opsPerS)],
  ["p50 µs", 8, (m) => m.p50Us],
  ["p99 µs", 8, (m) => m.p99Us],
  ["p99.9 µs", 8, (m) => m.p999Us],
  ["CPU µs/lookup", 13, (m) => m.cpuUsPerLookup.toFixed(2)],
];

/**
 * The columns of a load generator run that end a line of a benchmark's runs, after those that
 * say which cell it measured: its round, its measures and its wrong answers.
 */
export const RUN_COLUMNS: readonly TableColumn<LoadgenResult & { round: number }>[] = [
  ["round", 5, (r) => r.round],
  ...LOAD_COLUMNS,
  ["errors", 6, (r) => r.errors],
];

/**
 * A table of `T`s printed a line at a time, each cell right-aligned in its column, two spaces
 * apart.
 */
export class Table<T> {
  readonly #columns: readonly TableColumn<T>[];

  /** A table of `columns`. */
  constructor(columns: readonly TableColumn<T>[]) {
    this.#columns = columns;
  }

  /** Prints the headings. */
  printHeader(): void {
    this.#print(this.#columns.map(([heading]) => heading));
  }

  /** Prints `row`, a cell per column. */
  printRow(row: T): void {
    this.#print(this.#columns.map(([, , cell]) => cell(row)));
  }

  #print(cells: (string | number)[]): void {
    console.log(cells.map((cell, i) => String(cell).padStart(this.#columns[i][1])).join("  "));
  }
}

/** `rows` under `heads` as a Markdown table, each column as wide as its widest cell. */
export function markdownTable(heads: string[], rows: string[][]): string {
  const widths = heads.map((head, i) => Math.max(head.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  return [heads, widths.map((w) => "-".repeat(w)), ...rows].map(line).join("\n");
}

/** When a benchmark ran, on what, and which sipdir. */
export interface RunInfo<M extends Machine = Machine> {
  /** When it started, as an ISO 8601 string. */
  date: string;
  /** The machine ({@linkcode describeMachine}), perhaps with more said of it. */
  machine: M;
  /** The sipdir that ran ({@linkcode describeSource}). */
  source: Source;
}

/** Now, this machine, and the checkout's sipdir. */
export async function describeRun(): Promise<RunInfo> {
  const date = new Date().toISOString();
  return { date, machine: await describeMachine(), source: await describeSource() };
}

/**
 * Prints when the benchmark ran, on what (and on what else, `also`: the Redis it ran, say), and
 * which sipdir.
 */
export function printRunInfo({ date, machine, source }: RunInfo, also = ""): void {
  console.log(
    `${date}: ${machine.cpu}, ${machine.cores} cores, Linux ${machine.kernel}, ${machine.deno}` +
      (also === "" ? "" : `, ${also}`),
  );
  const changes = source.uncommittedFiles > 0
    ? ` with ${source.uncommittedFiles} uncommitted file(s)`
    : "";
  console.log(`sipdir: commit ${source.commit}${changes}`);
}

/**
 * Says on stderr which of `runs` got wrong answers (`describe` names a run); returns the exit
 * status: 1 if any did, else 0.
 */
export function reportErrors<R extends { errors: number }>(
  runs: R[],
  describe: (run: R) => string,
): number {
  const failed = runs.filter((r) => r.errors > 0);
  if (failed.length === 0) return 0;
  console.error(`\n${failed.length} run(s) got wrong answers:`);
  for (const r of failed) console.error(`  ${describe(r)}: ${r.errors}`);
  return 1;
}

/** Writes `results` into `path` as JSON, and says where. */
export async function writeResults(path: string, results: unknown): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(results, null, 2) + "\n");
  console.log(`results: ${path}`);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** The median of `xs` (NaN when empty). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Megabytes (10^6 bytes), with one decimal: `65.2 MB`. */
export function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Whether something is at `path`. */
export async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/**
 * Generates files once, into a cache: unless every one of `paths` is there, says it is
 * generating `what` and calls `make`, which writes each into its path with `.tmp` added; then
 * renames them into place, so that an interrupted run leaves no half a file in the cache.
 */
export async function generateOnce(
  paths: string[],
  what: string,
  make: () => Promise<void>,
): Promise<void> {
  if ((await Promise.all(paths.map(exists))).every((there) => there)) return;
  console.log(`generating ${what}`);
  await make();
  for (const path of paths) await Deno.rename(`${path}.tmp`, path);
}

/** The lines of the text file at `path`, empty ones left out. */
export async function readLines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path)).split("\n").filter((line) => line !== "");
}

/** Runs `command` to its end; its status and its output as text. */
export async function run(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
    .output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Resolves after `ms` milliseconds (at once for 0 or less). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Writes all of `bytes`, however many writes it takes. */
export async function writeAll(
  writer: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await writer.write(bytes.subarray(done));
}
