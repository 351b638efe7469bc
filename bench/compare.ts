/**
 * sipdir against Redis, side by side in one run: the reproducible comparison behind the README's
 * Performance table.
 *
 * ```sh
 * deno run -A bench/compare.ts [-n 100000] [-c 32,512] [-P 1,16] [-d 4] [-r 3]
 *   [--protocols line,redis] [--json FILE] [--work /tmp/sipdir-compare]
 * ```
 *
 * Both servers hold the same generated registrations (`testing/gen_regs.ts`; Redis as
 * `SET aor <the dump line>`, so both answer the same bytes) and are driven by the same C client,
 * `bench/loadgen.c`: connections that each keep a fixed number of requests in flight, every
 * answer checked. sipdir runs as the compiled binary would (the compile task's flags and the
 * launchers' environment); Redis is Debian's `redis-server` without persistence. For the line
 * protocol, Redis is driven with `GET` (what users would otherwise run); for the Redis protocol,
 * both servers get the very same bytes.
 *
 * Each cell (protocol × connections × requests in flight) runs once per round against each
 * server, the order alternating from round to round, so that drift of the machine over the run
 * (other tenants of a VM, CPU frequency, caches) lands on both alike; the summary takes medians
 * over rounds and quotes ratios, sipdir ÷ Redis, never absolute numbers across runs. Besides
 * lookups per second and latency percentiles it measures each server's CPU time per lookup (from
 * /proc/PID/stat during the measured window): on a noisy VM, throughput moves with the CPU the
 * host lends us, while the CPU a lookup costs is much steadier.
 *
 * Needs `redis-server` on PATH (Debian: `apt-get install redis-server`) and `cc`. Generated data
 * and the compiled client are cached in the work directory.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeRegistrations } from "../testing/gen_regs.ts";
import { compileFlags, LAUNCH_ENV, mainPath } from "../testing/sipdir_process.ts";

type Protocol = "line" | "redis";
type ServerName = "sipdir" | "redis";

/** Seconds each load generator run warms up before it measures. */
const WARMUP_SECONDS = 1;

const USAGE = `usage: deno run -A bench/compare.ts [options]

  -n ENTRIES            registrations to generate (default 100000)
  -c LIST               connections, comma-separated (default 32,512)
  -P LIST               requests in flight per connection (default 1,16)
  -d SECONDS            measured seconds per run, after a ${WARMUP_SECONDS} s warm-up (default 4)
  -r ROUNDS             rounds; each runs every cell against both servers (default 3)
  --protocols LIST      line, redis or both (default line,redis)
  --json FILE           where to write the results (default WORK/compare-latest.json)
  --work DIR            data, client and logs (default /tmp/sipdir-compare)
  -h, --help            this text`;

/** The shell that gives a server as many descriptors as it may have, for 1024 connections. */
const RAISE_FD_LIMIT = 'ulimit -n $(ulimit -Hn); exec "$@"';

interface Options {
  entries: number;
  connections: number[];
  inFlight: number[];
  seconds: number;
  rounds: number;
  protocols: Protocol[];
  json: string;
  work: string;
}

/** A server under test. */
interface Server {
  name: ServerName;
  /** The process that listens: the one whose CPU time is measured. */
  pid: number;
  /** Its ports on 127.0.0.1, by protocol (Redis has only `redis`). */
  ports: Partial<Record<Protocol, number>>;
  /** Resident memory once the data was loaded, in bytes. */
  rssAfterLoad: number;
  /** Stops it and waits for its exit. */
  stop(): Promise<void>;
}

/** What one load generator run printed. */
interface LoadResult {
  ops: number;
  opsPerS: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  errors: number;
}

/** One run: one server, one cell, one round. */
interface Run extends LoadResult {
  server: ServerName;
  protocol: Protocol;
  connections: number;
  inFlight: number;
  round: number;
  /** The server's CPU time (user + system) per lookup during the measured window, in µs. */
  cpuUsPerLookup: number;
}

/** Medians over rounds of one server in one cell. */
interface CellMedians {
  opsPerS: number;
  p50Us: number;
  p99Us: number;
  p999Us: number;
  cpuUsPerLookup: number;
  errors: number;
}

/** The summary of one (protocol, connections) column. */
interface Column {
  protocol: Protocol;
  connections: number;
  /** By requests in flight, then by server. */
  medians: Record<number, Record<ServerName, CellMedians>>;
  /** sipdir ÷ Redis, by measure name. */
  ratios: Record<string, number>;
}

/** The sipdir that ran: the commit, and how many files differed from it. */
interface Source {
  commit: string;
  uncommittedFiles: number;
}

interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  deno: string;
  redis: string;
}

/** Everything that must be stopped on the way out, newest first. */
const cleanups: (() => Promise<void>)[] = [];
/** Ctrl-C or SIGTERM arrived: its handler stops everything and exits. */
let interrupted = false;

// ---------------------------------------------------------------------------------------------
// Options

function parseOptions(args: string[]): Options {
  const { values } = parseFlags(args);
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const protocols = values.protocols.split(",");
  for (const protocol of protocols) {
    if (protocol !== "line" && protocol !== "redis") usageError(`unknown protocol ${protocol}`);
  }
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) usageError(`-d wants a positive number of seconds, not ${values.seconds}`);
  return {
    entries: positiveInteger("-n", values.entries),
    connections: integerList("-c", values.connections),
    inFlight: integerList("-P", values["in-flight"]),
    seconds,
    rounds: positiveInteger("-r", values.rounds),
    protocols: protocols as Protocol[],
    json: values.json ?? `${values.work}/compare-latest.json`,
    work: values.work,
  };
}

/** The command line's flags, as strings; a flag it does not know is a usage error. */
function parseFlags(args: string[]) {
  try {
    return parseArgs({
      args,
      options: {
        entries: { type: "string", short: "n", default: "100000" },
        connections: { type: "string", short: "c", default: "32,512" },
        "in-flight": { type: "string", short: "P", default: "1,16" },
        seconds: { type: "string", short: "d", default: "4" },
        rounds: { type: "string", short: "r", default: "3" },
        protocols: { type: "string", default: "line,redis" },
        json: { type: "string" },
        work: { type: "string", default: "/tmp/sipdir-compare" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (error) {
    usageError(error instanceof Error ? error.message : String(error));
  }
}

function positiveInteger(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) usageError(`${flag} wants a positive integer, not ${text}`);
  return n;
}

function integerList(flag: string, text: string): number[] {
  return text.split(",").map((item) => positiveInteger(flag, item));
}

function usageError(message: string): never {
  console.error(`compare: ${message}\n${USAGE}`);
  Deno.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Preparation: data, client, tools

/** The dump and its distinct AORs (one a line), generated once per size and cached. */
async function prepareData(
  work: string,
  entries: number,
): Promise<{ regs: string; keys: string; aors: string[] }> {
  const regs = `${work}/regs-${entries}.jsonl`;
  const keys = `${work}/keys-${entries}.txt`;
  if (!(await exists(regs) && await exists(keys))) {
    console.log(`generating ${entries} registrations into ${regs}`);
    // Written aside and renamed, so that an interrupted run leaves no half a dump in the cache.
    await writeRegistrations({ count: entries, out: `${regs}.tmp`, keys: `${keys}.tmp` });
    await Deno.rename(`${keys}.tmp`, keys);
    await Deno.rename(`${regs}.tmp`, regs);
  }
  const aors = (await Deno.readTextFile(keys)).split("\n").filter((k) => k !== "");
  return { regs, keys, aors };
}

/** Compiles bench/loadgen.c into the work directory unless the binary there is newer. */
async function buildLoadgen(work: string): Promise<string> {
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

/** Exits with a clear message unless `redis-server` and `cc` can be run. */
async function requireTools(): Promise<void> {
  const tools = [
    ["redis-server", "Debian: apt-get install redis-server"],
    ["cc", "Debian: apt-get install gcc"],
  ];
  for (const [tool, hint] of tools) {
    try {
      await run(tool, ["--version"]);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      console.error(`compare: ${tool} is not on PATH (${hint})`);
      Deno.exit(1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Starts redis-server on a free loopback port, without persistence, logging into the work dir. */
async function startRedis(work: string): Promise<Server> {
  const port = freePort();
  const args = [
    ...["--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", String(port)],
    ...["--logfile", `${work}/redis.log`],
  ];
  const child = new Deno.Command("sh", {
    args: ["-c", RAISE_FD_LIMIT, "sh", "redis-server", ...args],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = stopper(child);
  cleanups.unshift(stop);
  await Promise.race([
    waitForPort(port),
    child.status.then((status) => {
      throw new Error(`redis-server exited (${status.code}); see ${work}/redis.log`);
    }),
  ]);
  const pid = await listeningPid(port, child.pid);
  return { name: "redis", pid, ports: { redis: port }, rssAfterLoad: 0, stop };
}

/**
 * Loads every line of the dump as `SET aor <the line>`, pipelined over one connection; later
 * lines overwrite earlier ones of the same AOR, as in sipdir. Returns the AORs that repeat.
 */
async function loadRedis(port: number, regs: string): Promise<string[]> {
  const lines = (await Deno.readTextFile(regs)).split("\n").filter((line) => line !== "");
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

/** Redis's DBSIZE. */
async function redisDbSize(port: number): Promise<number> {
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

/** A command as RESP multibulk, lengths in bytes. */
function resp(args: string[]): string {
  let text = `*${args.length}\r\n`;
  for (const arg of args) text += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  return text;
}

/** Reads a connection by lines and by byte counts. */
class ConnReader {
  readonly #conn: Deno.Conn;
  #buffered = new Uint8Array(0);

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
    const chunk = new Uint8Array(1 << 16);
    const n = await this.#conn.read(chunk);
    if (n === null) throw new Error("the server closed the connection");
    const joined = new Uint8Array(this.#buffered.length + n);
    joined.set(this.#buffered);
    joined.set(chunk.subarray(0, n), this.#buffered.length);
    this.#buffered = joined;
  }
}

/** `GET key` over RESP: the value, or null for nil. */
async function redisGet(conn: Deno.Conn, reader: ConnReader, key: string): Promise<string | null> {
  await writeAll(conn, encoder.encode(resp(["GET", key])));
  const header = await reader.line();
  if (header === "$-1\r") return null;
  const length = Number(header.slice(1, -1));
  if (!header.startsWith("$") || !header.endsWith("\r") || !Number.isInteger(length)) {
    throw new Error(`GET ${key} answered ${header}`);
  }
  return decoder.decode((await reader.bytes(length + 2)).subarray(0, length));
}

/** A lookup over the line protocol: the answer line, without its LF. */
async function lineGet(conn: Deno.Conn, reader: ConnReader, key: string): Promise<string> {
  await writeAll(conn, encoder.encode(`${key}\n`));
  return await reader.line();
}

/**
 * Checks that Redis and both of sipdir's ports answer `aors` with the very same bytes (the load
 * generator only checks that an answer names its AOR).
 */
async function checkSameAnswers(servers: Record<ServerName, Server>, aors: string[]) {
  const open = async (port: number) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    return { conn, reader: new ConnReader(conn) };
  };
  const redis = await open(servers.redis.ports.redis!);
  const line = await open(servers.sipdir.ports.line!);
  const sipdirRedis = await open(servers.sipdir.ports.redis!);
  try {
    for (const aor of aors) {
      const expected = await redisGet(redis.conn, redis.reader, aor);
      const answers = {
        "sipdir's line port": await lineGet(line.conn, line.reader, aor),
        "sipdir's Redis port": await redisGet(sipdirRedis.conn, sipdirRedis.reader, aor),
      };
      for (const [where, answer] of Object.entries(answers)) {
        if (answer !== expected) {
          throw new Error(
            `${where} answers ${aor} with\n  ${answer}\nwhere Redis holds\n  ${expected}`,
          );
        }
      }
    }
  } finally {
    for (const { conn } of [redis, line, sipdirRedis]) conn.close();
  }
}

/** Up to `count` AORs spread evenly over `aors`. */
function spread(aors: string[], count: number): string[] {
  const step = Math.max(1, Math.floor(aors.length / count));
  return aors.filter((_, i) => i % step === 0).slice(0, count);
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

/**
 * Starts sipdir as the compiled binary runs (the compile task's flags, the launchers'
 * environment), on free ports for both protocols; checks that it loaded `distinct` entries.
 */
async function startSipdir(work: string, regs: string, distinct: number): Promise<Server> {
  const args = [
    ...["run", ...await compileFlags(), mainPath()],
    ...["--data", regs, "--ip", "127.0.0.1", "--port", "0", "--redis-port", "0"],
  ];
  const child = new Deno.Command("sh", {
    args: ["-c", RAISE_FD_LIMIT, "sh", Deno.execPath(), ...args],
    env: { ...LAUNCH_ENV },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = stopper(child);
  cleanups.unshift(stop);
  const log = new StderrLog(child.stderr, await Deno.create(`${work}/sipdir.log`));
  const loaded = Number((await log.waitFor(/loaded (\d+) entries/))[1]);
  const line = Number((await log.waitFor(/listening on \S+:(\d+)/))[1]);
  const redis = Number((await log.waitFor(/Redis protocol on \S+:(\d+)/))[1]);
  // The rest goes to the log file only; losing it would cost nothing but the file.
  log.drain().catch(() => {});
  if (loaded !== distinct) throw new Error(`sipdir loaded ${loaded} entries, not ${distinct}`);
  const pid = await listeningPid(line, child.pid);
  return { name: "sipdir", pid, ports: { line, redis }, rssAfterLoad: 0, stop };
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A function that stops `child` (SIGTERM, SIGKILL after 5 s) and waits for its exit. */
function stopper(child: Deno.ChildProcess): () => Promise<void> {
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
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Resolves once something accepts connections on 127.0.0.1:`port` (up to 60 s). */
async function waitForPort(port: number): Promise<void> {
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
async function listeningPid(port: number, root: number): Promise<number> {
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
async function cpuTicks(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // The command name, in parentheses, may hold spaces: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime: fields 14 and 15 of proc(5)
}

/** Resident memory of `pid`, in bytes. */
async function residentBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const line = status.split("\n").find((l) => l.startsWith("VmRSS:"));
  if (line === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** What every run shares. */
interface Bench {
  loadgen: string;
  keys: string;
  seconds: number;
  clockTicks: number;
}

/**
 * Runs the load generator against one server and samples that server's CPU time during the
 * measured window.
 */
async function measure(
  bench: Bench,
  server: Server,
  cell: { protocol: Protocol; connections: number; inFlight: number; round: number },
): Promise<Run> {
  // sipdir is driven in the cell's protocol, on that protocol's port; Redis always with GET.
  const mode = server.name === "sipdir" ? cell.protocol : "redis";
  const port = server.ports[mode]!;
  const args = [
    ...["-h", "127.0.0.1", "-p", String(port), "-k", bench.keys, "-m", mode],
    ...["-c", String(cell.connections), "-P", String(cell.inFlight)],
    ...["-d", String(bench.seconds), "-w", String(WARMUP_SECONDS)],
  ];
  const child = new Deno.Command(bench.loadgen, { args, stdout: "piped", stderr: "piped" })
    .spawn();
  const stop = stopper(child);
  cleanups.unshift(stop);
  const started = performance.now();
  const output = child.output();
  // Stop sampling a little before the load generator stops: a late timer must not count idle time.
  const margin = Math.min(0.25, bench.seconds / 10);
  const cpu = await cpuDuring(
    server.pid,
    started + WARMUP_SECONDS * 1000,
    started + (WARMUP_SECONDS + bench.seconds - margin) * 1000,
  );
  const { code, stdout, stderr } = await output;
  cleanups.splice(cleanups.indexOf(stop), 1);
  const text = decoder.decode(stdout);
  // Status 1: it ran, and some answers were wrong; anything else is a failure of the run.
  if (code !== 0 && !(code === 1 && text.startsWith("ops="))) {
    throw new Error(`loadgen ${args.join(" ")} failed (${code}):\n${decoder.decode(stderr)}`);
  }
  if (code === 1) console.error(decoder.decode(stderr).trimEnd());
  const load = parseLoadResult(text);
  const cpuSecondsPerSecond = cpu.ticks / bench.clockTicks / cpu.seconds;
  return {
    server: server.name,
    ...cell,
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

/** Every run of the schedule, printed as it completes. */
async function runAll(
  options: Options,
  bench: Bench,
  servers: Record<ServerName, Server>,
): Promise<Run[]> {
  const runs: Run[] = [];
  printRunHeader();
  for (const protocol of options.protocols) {
    for (const connections of options.connections) {
      for (const inFlight of options.inFlight) {
        for (let round = 1; round <= options.rounds; round++) {
          // Alternating which server goes first cancels drift within a cell.
          const order: ServerName[] = round % 2 === 1 ? ["sipdir", "redis"] : ["redis", "sipdir"];
          for (const name of order) {
            const result = await measure(bench, servers[name], {
              protocol,
              connections,
              inFlight,
              round,
            });
            printRun(result);
            runs.push(result);
          }
        }
      }
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Summary

/** Medians and ratios, one column per (protocol, connections). */
function summarize(
  options: Options,
  runs: Run[],
  rss: Record<ServerName, number>,
): Column[] {
  const columns: Column[] = [];
  for (const protocol of options.protocols) {
    for (const connections of options.connections) {
      const medians: Column["medians"] = {};
      for (const inFlight of options.inFlight) {
        const cell = (server: ServerName) =>
          cellMedians(
            runs.filter((r) =>
              r.server === server && r.protocol === protocol && r.connections === connections &&
              r.inFlight === inFlight
            ),
          );
        medians[inFlight] = { sipdir: cell("sipdir"), redis: cell("redis") };
      }
      columns.push({ protocol, connections, medians, ratios: ratios(medians, rss) });
    }
  }
  return columns;
}

/** sipdir ÷ Redis for each measure of one column, in the order of the README's table. */
function ratios(
  medians: Column["medians"],
  rss: Record<ServerName, number>,
): Record<string, number> {
  const cells = Object.entries(medians);
  const result: Record<string, number> = {};
  const measures: [string, (m: CellMedians) => number][] = [
    ["throughput", (m) => m.opsPerS],
    ["CPU per lookup", (m) => m.cpuUsPerLookup],
    ["p99.9 latency", (m) => m.p999Us],
  ];
  for (const [name, pick] of measures) {
    for (const [inFlight, both] of cells) {
      result[`${name}, ${inFlight} in flight`] = pick(both.sipdir) / pick(both.redis);
    }
  }
  result["resident memory after load"] = rss.sipdir / rss.redis;
  return result;
}

function cellMedians(runs: Run[]): CellMedians {
  const of = (pick: (run: Run) => number) => median(runs.map(pick));
  return {
    opsPerS: of((r) => r.opsPerS),
    p50Us: of((r) => r.p50Us),
    p99Us: of((r) => r.p99Us),
    p999Us: of((r) => r.p999Us),
    cpuUsPerLookup: of((r) => r.cpuUsPerLookup),
    errors: runs.reduce((sum, r) => sum + r.errors, 0),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

// ---------------------------------------------------------------------------------------------
// Printing

const RUN_COLUMNS: [string, number][] = [
  ["server", 6],
  ["protocol", 8],
  ["conns", 5],
  ["in-flight", 9],
  ["round", 5],
  ["ops/s", 9],
  ["p50 µs", 8],
  ["p99 µs", 8],
  ["p99.9 µs", 8],
  ["CPU µs/lookup", 13],
  ["errors", 6],
];

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((cell, i) => String(cell).padStart(widths[i])).join("  ");
}

function printRunHeader(): void {
  console.log(
    row(RUN_COLUMNS.map(([name]) => name), RUN_COLUMNS.map(([, width]) => width)),
  );
}

function printRun(run: Run): void {
  console.log(row(
    [
      run.server,
      run.protocol,
      run.connections,
      run.inFlight,
      run.round,
      Math.round(run.opsPerS),
      run.p50Us,
      run.p99Us,
      run.p999Us,
      run.cpuUsPerLookup.toFixed(2),
      run.errors,
    ],
    RUN_COLUMNS.map(([, width]) => width),
  ));
}

function printMedians(columns: Column[], rounds: number): void {
  console.log(`\nMedians over ${rounds} round(s):\n`);
  const widths = [8, 5, 9, 6, 9, 8, 8, 8, 13];
  console.log(row(
    [
      "protocol",
      "conns",
      "in-flight",
      "server",
      "ops/s",
      "p50 µs",
      "p99 µs",
      "p99.9 µs",
      "CPU µs/lookup",
    ],
    widths,
  ));
  for (const column of columns) {
    for (const [inFlight, servers] of Object.entries(column.medians)) {
      for (const name of ["sipdir", "redis"] as const) {
        const m = servers[name];
        console.log(row(
          [
            column.protocol,
            column.connections,
            inFlight,
            name,
            Math.round(m.opsPerS),
            m.p50Us,
            m.p99Us,
            m.p999Us,
            m.cpuUsPerLookup.toFixed(2),
          ],
          widths,
        ));
      }
    }
  }
}

/** The ratios as a Markdown table, one column per (protocol, connections), as in the README. */
function printRatios(columns: Column[]): void {
  console.log(
    "\nsipdir ÷ Redis (above 1 is better for throughput, below 1 for CPU and latency):\n",
  );
  const measures = Object.keys(columns[0].ratios);
  const heads = columns.map((c) =>
    `${c.protocol === "line" ? "line" : "Redis port"}, ${c.connections} conns`
  );
  const first = Math.max("Measure (sipdir ÷ Redis)".length, ...measures.map((m) => m.length));
  const widths = [first, ...heads.map((h) => h.length)];
  const line = (cells: string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(["Measure (sipdir ÷ Redis)", ...heads]));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const measure of measures) {
    console.log(line([measure, ...columns.map((c) => c.ratios[measure].toFixed(2))]));
  }
}

function printMachine(machine: Machine, source: Source, date: string): void {
  console.log(
    `${date}: ${machine.cpu}, ${machine.cores} cores, Linux ${machine.kernel}, ` +
      `${machine.deno}, ${machine.redis}`,
  );
  const changes = source.uncommittedFiles > 0
    ? ` with ${source.uncommittedFiles} uncommitted file(s)`
    : "";
  console.log(`sipdir: commit ${source.commit}${changes}`);
}

// ---------------------------------------------------------------------------------------------
// Machine

async function describeMachine(): Promise<Machine> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
  const model = cpuinfo.split("\n").find((l) => l.startsWith("model name"));
  const deno = await run(Deno.execPath(), ["--version"]);
  const redis = await run("redis-server", ["--version"]);
  return {
    cpu: model === undefined ? "unknown CPU" : model.slice(model.indexOf(":") + 1).trim(),
    cores: navigator.hardwareConcurrency,
    kernel: (await Deno.readTextFile("/proc/sys/kernel/osrelease")).trim(),
    deno: deno.stdout.split("\n")[0],
    redis: redis.stdout.trim(),
  };
}

/**
 * The checkout's commit and its uncommitted files (sipdir runs from the work tree). Read-only:
 * no index refresh, so that it never contends with someone committing meanwhile.
 */
async function describeSource(): Promise<Source> {
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

async function clockTicksPerSecond(): Promise<number> {
  const { code, stdout } = await run("getconf", ["CLK_TCK"]);
  const ticks = Number(stdout.trim());
  if (code !== 0 || !(ticks > 0)) throw new Error(`getconf CLK_TCK answered ${stdout}`);
  return ticks;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function run(
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

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

async function writeAll(
  writer: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await writer.write(bytes.subarray(done));
}

async function cleanUp(): Promise<void> {
  for (const stop of cleanups.splice(0)) await stop();
}

function onInterrupt(): void {
  const handler = async () => {
    interrupted = true;
    console.error("\ninterrupted: stopping the servers");
    await cleanUp();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", handler);
  Deno.addSignalListener("SIGTERM", handler);
}

// ---------------------------------------------------------------------------------------------
// Main

/**
 * Starts both servers on the same data, checks that they hold the same answers, and notes their
 * resident memory once loaded.
 */
async function startServers(
  work: string,
  data: { regs: string; aors: string[] },
): Promise<Record<ServerName, Server>> {
  const redis = await startRedis(work);
  const repeated = await loadRedis(redis.ports.redis!, data.regs);
  const dbSize = await redisDbSize(redis.ports.redis!);
  if (dbSize !== data.aors.length) {
    throw new Error(`Redis holds ${dbSize} keys, not the ${data.aors.length} distinct AORs`);
  }
  redis.rssAfterLoad = await residentBytes(redis.pid);
  const sipdir = await startSipdir(work, data.regs, data.aors.length);
  sipdir.rssAfterLoad = await residentBytes(sipdir.pid);
  const servers = { sipdir, redis };
  // The AORs that repeat are where "the last line wins" shows.
  await checkSameAnswers(servers, [...spread(data.aors, 200), ...spread(repeated, 200)]);
  console.log(
    `${data.aors.length} AORs loaded, the same answers from both; resident memory: ` +
      `sipdir ${mb(sipdir.rssAfterLoad)}, Redis ${mb(redis.rssAfterLoad)}\n`,
  );
  return servers;
}

/** Writes every run and the summary as JSON. */
async function writeResults(path: string, results: Record<string, unknown>): Promise<void> {
  await Deno.writeTextFile(path, JSON.stringify(results, null, 2) + "\n");
  console.log(`results: ${path}`);
}

/** Says which runs got wrong answers; returns the exit status. */
function reportErrors(runs: Run[]): number {
  const failed = runs.filter((r) => r.errors > 0);
  if (failed.length === 0) return 0;
  console.error(`\n${failed.length} run(s) got wrong answers:`);
  for (const r of failed) {
    console.error(`  ${r.server} ${r.protocol} c=${r.connections} P=${r.inFlight}: ${r.errors}`);
  }
  return 1;
}

async function main(): Promise<number> {
  const options = parseOptions(Deno.args);
  await requireTools();
  onInterrupt();
  await Deno.mkdir(options.work, { recursive: true });
  const date = new Date().toISOString();
  const machine = await describeMachine();
  const source = await describeSource();
  printMachine(machine, source, date);

  const data = await prepareData(options.work, options.entries);
  const bench: Bench = {
    loadgen: await buildLoadgen(options.work),
    keys: data.keys,
    seconds: options.seconds,
    clockTicks: await clockTicksPerSecond(),
  };
  const servers = await startServers(options.work, data);
  const rssAfterLoad = { sipdir: servers.sipdir.rssAfterLoad, redis: servers.redis.rssAfterLoad };

  const runs = await runAll(options, bench, servers);
  const rssAfterRuns = {
    sipdir: await residentBytes(servers.sipdir.pid),
    redis: await residentBytes(servers.redis.pid),
  };
  await cleanUp();

  const summary = summarize(options, runs, rssAfterLoad);
  printMedians(summary, options.rounds);
  printRatios(summary);
  console.log();
  printMachine(machine, source, date);
  await writeResults(options.json, {
    date,
    machine,
    source,
    options,
    distinctAors: data.aors.length,
    rssAfterLoad,
    rssAfterRuns,
    runs,
    summary,
  });
  return reportErrors(runs);
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

try {
  Deno.exit(await main());
} catch (error) {
  // Interrupted, a run fails because its load generator was stopped: the handler says so and exits.
  if (!interrupted) {
    await cleanUp();
    console.error(`compare: ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
