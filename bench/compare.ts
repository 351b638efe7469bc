/**
 * sipdir against Redis, side by side in one run: the reproducible comparison behind the README's
 * Performance table.
 *
 * ```sh
 * deno run -A bench/compare.ts [-n 100000] [-c 32,512] [-P 1,16] [-d 4] [-r 3]
 *   [--protocols line,redis] [--json FILE] [--chart FILE] [--work /tmp/sipdir-compare]
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
 * With `--chart FILE`, it also draws (`bench/chart.ts`) lookups per second by requests in flight,
 * sipdir's and Redis's medians side by side, for the line protocol (the Redis port if only that
 * was measured) at the first connection count of `-c`, as an SVG grouped-bar chart captioned with
 * the machine, the date, the data, the connections, the rounds and the client; and writes what it
 * shows next to it as JSON (FILE with `.json` for its extension). The performance page's chart:
 *
 * ```sh
 * deno task bench:compare -- --protocols line -c 32 -P 1,2,4,8,16,32,64 --chart docs/depths.svg
 * ```
 *
 * Needs `redis-server` on PATH (Debian: `apt-get install redis-server`) and `cc`. Generated data
 * and the compiled client are cached in the work directory.
 *
 * @module
 */

import { type DepthResult, renderDepthChart } from "./chart.ts";
import { writeRegistrations } from "../testing/gen_regs.ts";
import type {
  Cleanups,
  LoadgenResult,
  LoadgenSetup,
  LoadMeasures,
  Machine as Host,
  Protocol,
  RunInfo,
  TableColumn,
} from "./harness.ts";
import {
  choicesFlag,
  CommandLine,
  describeRun,
  entriesFlag,
  generateOnce,
  integerFlag,
  integerListFlag,
  LOAD_COLUMNS,
  loadgenSetup,
  loadMedians,
  loadRedis,
  LookupClient,
  markdownTable,
  mb,
  optionalFlag,
  printRunInfo,
  readLines,
  redisDbSize,
  reportErrors,
  requireTools,
  residentBytes,
  run,
  RUN_COLUMNS,
  runLoadgen,
  runMain,
  runSecondsFlag,
  startRedis,
  startSipdir as startSipdirProcess,
  Table,
  textFlag,
  writeResults,
} from "./harness.ts";

type ServerName = "sipdir" | "redis";

const COMMAND_LINE = new CommandLine("bench/compare.ts", {
  entries: entriesFlag("100000"),
  connections: integerListFlag("32,512", "connections, comma-separated", { short: "c" }),
  inFlight: integerListFlag("1,16", "requests in flight per connection", { short: "P" }),
  seconds: runSecondsFlag("4"),
  rounds: integerFlag("3", "rounds; each runs every cell against both servers", {
    short: "r",
    placeholder: "ROUNDS",
  }),
  protocols: choicesFlag(["line", "redis"], "line,redis", "line, redis or both"),
  json: optionalFlag("where to write the results (default WORK/compare-latest.json)", {
    placeholder: "FILE",
  }),
  chart: optionalFlag(
    "also draw throughput by requests in flight (line protocol, first -c)\n" +
      "as an SVG chart into FILE, and its data into FILE with .json",
    { placeholder: "FILE" },
  ),
  work: textFlag("/tmp/sipdir-compare", "data, client and logs", { placeholder: "DIR" }),
});

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

/** One run: one server, one cell, one round. */
interface Run extends LoadgenResult {
  server: ServerName;
  protocol: Protocol;
  connections: number;
  inFlight: number;
  round: number;
}

/** The summary of one (protocol, connections) column. */
interface Column {
  protocol: Protocol;
  connections: number;
  /** Medians over rounds, by requests in flight, then by server. */
  medians: Record<number, Record<ServerName, LoadMeasures>>;
  /** sipdir ÷ Redis, by measure name. */
  ratios: Record<string, number>;
}

/** The machine, and the Redis it ran. */
interface Machine extends Host {
  redis: string;
}

// ---------------------------------------------------------------------------------------------
// Options

function parseOptions(args: string[]) {
  const options = COMMAND_LINE.parse(args);
  return { ...options, json: options.json ?? `${options.work}/compare-latest.json` };
}

/** What the command line asks for. */
type Options = ReturnType<typeof parseOptions>;

// ---------------------------------------------------------------------------------------------
// Preparation: the data

/** The dump and its distinct AORs (one a line), generated once per size and cached. */
async function prepareData(
  work: string,
  entries: number,
): Promise<{ regs: string; keys: string; aors: string[] }> {
  const regs = `${work}/regs-${entries}.jsonl`;
  const keys = `${work}/keys-${entries}.txt`;
  await generateOnce([regs, keys], `${entries} registrations into ${regs}`, async () => {
    await writeRegistrations({ count: entries, out: `${regs}.tmp`, keys: `${keys}.tmp` });
  });
  return { regs, keys, aors: await readLines(keys) };
}

// ---------------------------------------------------------------------------------------------
// Redis

/** Starts redis-server, without persistence, logging into the work directory. */
async function startRedisServer(work: string, cleanups: Cleanups): Promise<Server> {
  const { pid, port, stop } = await startRedis(`${work}/redis.log`, cleanups);
  return { name: "redis", pid, ports: { redis: port }, rssAfterLoad: 0, stop };
}

/**
 * Checks that Redis and both of sipdir's ports answer `aors` with the very same bytes (the load
 * generator only checks that an answer names its AOR).
 */
async function checkSameAnswers(servers: Record<ServerName, Server>, aors: string[]) {
  const redis = await LookupClient.open(servers.redis.ports.redis!);
  const line = await LookupClient.open(servers.sipdir.ports.line!);
  const sipdirRedis = await LookupClient.open(servers.sipdir.ports.redis!);
  try {
    for (const aor of aors) {
      const expected = await redis.get(aor);
      const answers = {
        "sipdir's line port": await line.lookUp(aor),
        "sipdir's Redis port": await sipdirRedis.get(aor),
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
    for (const client of [redis, line, sipdirRedis]) client.close();
  }
}

/** Up to `count` AORs spread evenly over `aors`. */
function spread(aors: string[], count: number): string[] {
  const step = Math.max(1, Math.floor(aors.length / count));
  return aors.filter((_, i) => i % step === 0).slice(0, count);
}

// ---------------------------------------------------------------------------------------------
// sipdir

/**
 * Starts sipdir as the compiled binary runs (the compile task's flags, the launchers'
 * environment), on free ports for both protocols; checks that it loaded `distinct` entries.
 */
async function startSipdir(
  work: string,
  regs: string,
  distinct: number,
  cleanups: Cleanups,
): Promise<Server> {
  const sipdir = await startSipdirProcess(
    { data: regs, args: ["--redis-port", "0"], logFile: `${work}/sipdir.log` },
    cleanups,
  );
  if (sipdir.loaded !== distinct) {
    throw new Error(`sipdir loaded ${sipdir.loaded} entries, not ${distinct}`);
  }
  const ports = { line: sipdir.ports.line, redis: sipdir.ports.redis };
  return { name: "sipdir", pid: sipdir.pid, ports, rssAfterLoad: 0, stop: sipdir.stop };
}

// ---------------------------------------------------------------------------------------------
// Measuring

/**
 * Runs the load generator against one server and samples that server's CPU time during the
 * measured window.
 */
async function measure(
  setup: LoadgenSetup,
  cleanups: Cleanups,
  server: Server,
  cell: { protocol: Protocol; connections: number; inFlight: number; round: number },
): Promise<Run> {
  // sipdir is driven in the cell's protocol, on that protocol's port; Redis always with GET.
  const mode = server.name === "sipdir" ? cell.protocol : "redis";
  const { connections, inFlight } = cell;
  const port = server.ports[mode]!;
  const result = await runLoadgen(
    { ...setup, port, mode, connections, inFlight, cpuPid: server.pid },
    cleanups,
  );
  return { server: server.name, ...cell, ...result };
}

/** Every run of the schedule, printed as it completes. */
async function runAll(
  options: Options,
  setup: LoadgenSetup,
  cleanups: Cleanups,
  servers: Record<ServerName, Server>,
): Promise<Run[]> {
  const runs: Run[] = [];
  RUN_TABLE.printHeader();
  for (const protocol of options.protocols) {
    for (const connections of options.connections) {
      for (const inFlight of options.inFlight) {
        for (let round = 1; round <= options.rounds; round++) {
          // Alternating which server goes first cancels drift within a cell.
          const order: ServerName[] = round % 2 === 1 ? ["sipdir", "redis"] : ["redis", "sipdir"];
          for (const name of order) {
            const cell = { protocol, connections, inFlight, round };
            const result = await measure(setup, cleanups, servers[name], cell);
            RUN_TABLE.printRow(result);
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
          loadMedians(
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
  const measures: [string, (m: LoadMeasures) => number][] = [
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

// ---------------------------------------------------------------------------------------------
// Printing

/** What the tables print of a cell, and of the server measured in it. */
interface CellRow {
  protocol: Protocol;
  connections: number;
  inFlight: number;
  server: ServerName;
}

const CELL_COLUMNS: readonly TableColumn<CellRow>[] = [
  ["protocol", 8, (r) => r.protocol],
  ["conns", 5, (r) => r.connections],
  ["in-flight", 9, (r) => r.inFlight],
];
const SERVER_COLUMN: TableColumn<CellRow> = ["server", 6, (r) => r.server];

const RUN_TABLE = new Table<Run>([SERVER_COLUMN, ...CELL_COLUMNS, ...RUN_COLUMNS]);

function printMedians(columns: Column[], rounds: number): void {
  console.log(`\nMedians over ${rounds} round(s):\n`);
  const table = new Table<CellRow & LoadMeasures>([
    ...CELL_COLUMNS,
    SERVER_COLUMN,
    ...LOAD_COLUMNS,
  ]);
  table.printHeader();
  for (const { protocol, connections, medians } of columns) {
    for (const [inFlight, servers] of Object.entries(medians)) {
      for (const server of ["sipdir", "redis"] as const) {
        const cell = { protocol, connections, inFlight: Number(inFlight), server };
        table.printRow({ ...servers[server], ...cell });
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
  console.log(markdownTable(
    ["Measure (sipdir ÷ Redis)", ...heads],
    measures.map((m) => [m, ...columns.map((c) => c.ratios[m].toFixed(2))]),
  ));
}

// ---------------------------------------------------------------------------------------------
// The chart

/** What the chart shows, written next to it as JSON. */
interface ChartFile extends RunInfo<Machine> {
  title: string;
  caption: string;
  protocol: Protocol;
  connections: number;
  rounds: number;
  entries: number;
  /** Medians over rounds, by increasing requests in flight. */
  results: DepthResult[];
}

/**
 * The chart's data: lookups per second by requests in flight, sipdir's and Redis's medians, for
 * the line protocol (or the one measured) at the first connection count of the command line.
 */
function chartData(
  options: Options,
  columns: Column[],
  run: RunInfo<Machine>,
): ChartFile {
  const protocol = options.protocols.includes("line") ? "line" : options.protocols[0];
  const connections = options.connections[0];
  const column = columns.find((c) => c.protocol === protocol && c.connections === connections)!;
  // Object.entries lists integer keys in increasing order.
  const results = Object.entries(column.medians).map(([inFlight, both]) => ({
    depth: Number(inFlight),
    sipdir: Math.round(both.sipdir.opsPerS),
    redis: Math.round(both.redis.opsPerS),
  }));
  const title = protocol === "line"
    ? "Lookups per second: sipdir's line protocol, Redis GET"
    : "Lookups per second: GET over RESP, both servers";
  const caption = `${run.date.slice(0, 10)}, ${run.machine.cores} × ${run.machine.cpu}, ` +
    `${options.entries} registrations, ${connections} connections, median of ` +
    `${options.rounds} round${options.rounds === 1 ? "" : "s"}, bench/loadgen.c`;
  return {
    title,
    caption,
    protocol,
    connections,
    rounds: options.rounds,
    entries: options.entries,
    ...run,
    results,
  };
}

/** Writes the chart into `path` and its data next to it (`.json` for the extension). */
async function writeChart(path: string, chart: ChartFile): Promise<void> {
  const json = path.replace(/(\.svg)?$/, ".json");
  await Deno.writeTextFile(path, renderDepthChart(chart));
  await Deno.writeTextFile(json, JSON.stringify(chart, null, 2) + "\n");
  console.log(`chart: ${path}, its data: ${json}`);
}

// ---------------------------------------------------------------------------------------------
// Machine

/** Now, this machine and the Redis on PATH, and the checkout's sipdir. */
async function describeThisRun(): Promise<RunInfo<Machine>> {
  const info = await describeRun();
  const redis = (await run("redis-server", ["--version"])).stdout.trim();
  return { ...info, machine: { ...info.machine, redis } };
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
  cleanups: Cleanups,
): Promise<Record<ServerName, Server>> {
  const redis = await startRedisServer(work, cleanups);
  const repeated = await loadRedis(redis.ports.redis!, data.regs);
  const dbSize = await redisDbSize(redis.ports.redis!);
  if (dbSize !== data.aors.length) {
    throw new Error(`Redis holds ${dbSize} keys, not the ${data.aors.length} distinct AORs`);
  }
  redis.rssAfterLoad = await residentBytes(redis.pid);
  const sipdir = await startSipdir(work, data.regs, data.aors.length, cleanups);
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

async function main(cleanups: Cleanups): Promise<number> {
  const options = parseOptions(Deno.args);
  await requireTools("compare", ["redis-server", "cc"]);
  cleanups.stopOnSignals("\ninterrupted: stopping the servers");
  await Deno.mkdir(options.work, { recursive: true });
  const info = await describeThisRun();
  printRunInfo(info, info.machine.redis);

  const data = await prepareData(options.work, options.entries);
  const setup = await loadgenSetup(options.work, data.keys, options.seconds);
  const servers = await startServers(options.work, data, cleanups);
  const rssAfterLoad = { sipdir: servers.sipdir.rssAfterLoad, redis: servers.redis.rssAfterLoad };

  const runs = await runAll(options, setup, cleanups, servers);
  const rssAfterRuns = {
    sipdir: await residentBytes(servers.sipdir.pid),
    redis: await residentBytes(servers.redis.pid),
  };
  await cleanups.runAll();

  const summary = summarize(options, runs, rssAfterLoad);
  printMedians(summary, options.rounds);
  printRatios(summary);
  console.log();
  printRunInfo(info, info.machine.redis);
  await writeResults(options.json, {
    ...info,
    options,
    distinctAors: data.aors.length,
    rssAfterLoad,
    rssAfterRuns,
    runs,
    summary,
  });
  if (options.chart !== undefined) {
    await writeChart(options.chart, chartData(options, summary, info));
  }
  return reportErrors(runs, (r) => `${r.server} ${r.protocol} c=${r.connections} P=${r.inFlight}`);
}

if (import.meta.main) await runMain("compare", main);
