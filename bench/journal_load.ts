/**
 * What following a journal (`--journal FILE`) costs and how fast it is: how long after a change
 * is appended sipdir answers with it, and what a steady stream of changes does to lookups.
 *
 * ```sh
 * deno run -A bench/journal_load.ts [-n 100000] [-r 3] [-d 4] [--rate 10000] [--line-writes]
 *   [--json FILE] [--work /tmp/sipdir-journal-bench]
 * ```
 *
 * (`deno task bench:journal -- [options]` runs the same.)
 *
 * sipdir serves a generated dump (`testing/gen_regs.ts`, at sequence 0, plus one probe
 * registration) and follows a journal that starts empty; it runs as the compiled binary would
 * (the compile task's flags, the launchers' environment), with its line, Redis and HTTP ports.
 *
 * **The writer** is a child process (this file with `--writer`), so that its CPU time is not
 * counted as sipdir's and it does not share an event loop with anything measured. Every 10 ms it
 * appends a batch of lines (100 for 10 000 changes a second: as many as are due since it started,
 * so that a late timer does not lower the rate), in one write, or a write per line with
 * `--line-writes` (as an exporter that appends each change as it comes): lines of `generateJournal`
 * over the dump's AORs (12 s of them made before the runs and used in turn, so that the writer
 * costs what an exporter appending costs), numbered on from the dump's sequence, and, last in each
 * batch, a put of the probe AOR whose registration carries the batch's number and the time it was
 * written (`"writtenAt"`, ms since the epoch, to the µs; also how long before it the 50 batches
 * before were written); the probe counts in the rate. Deletes go only to a tenth of the dump's AORs
 * that the load generator never asks for (it counts an unknown AOR as a wrong answer); puts go to
 * all of them, so lookups do meet changed registrations. The parent starts and pauses the writer
 * between runs over its stdin; after each pause it waits, on /metrics, until sipdir applied the
 * last line.
 *
 * **What applying costs.** First, with no client at all: sipdir's CPU time (from /proc/PID/stat)
 * for -d seconds idle, then for -d seconds while the writer appends (after a 1 s warm-up); the
 * difference over the lines applied meanwhile (/metrics) is the CPU time one change costs. It is
 * measured twice: at first, when most changes are a registration's first (a new entry, in new
 * memory), and again after the runs, when most registrations were changed before.
 *
 * **Apply latency.** A connection to the line port asks for the probe AOR over and over, one
 * request in flight; each time the answer's batch number moves on, every batch since the last one
 * seen was applied by now, and now − its writtenAt is one sample: the time from the append to an
 * answer holding it, which includes waiting for sipdir's next look at the journal (every 20 ms),
 * reading and applying the batch, and at most one probe round trip. A probe, rather than the
 * sequence number on /metrics, because it measures what clients see. Why every batch and not just
 * the newest: sipdir usually applies two batches per look, and the prober sees only the newer
 * probe; counting only those would measure the freshest lines alone, about half the true
 * latency. It is measured first alone (the writer running, no other load; after a 1 s warm-up,
 * for rounds × -d seconds), then during every lookup run too: the prober also runs in the runs
 * without the writer (where it sees no change), so that both sides carry its lookups alike.
 *
 * **Lookups.** The same C client as `bench/compare.ts` (`bench/loadgen.c`), 32 connections, 1 and
 * 16 requests in flight, on the line port (`-m line`) and the Redis port (`-m redis`), every answer
 * checked; each cell runs once per round with the writer and once without, the order alternating
 * from round to round, so that drift over the run (other tenants of a VM, CPU frequency, and the
 * changes piling up in sipdir) lands on both alike; the summary quotes medians over rounds, and
 * with ÷ without as the median over rounds of each round's ratio (its run with the writer over its
 * run without, next to each other in time). CPU per lookup is sipdir's CPU time (all its threads,
 * from /proc/PID/stat) in the measured window over the lookups the load generator completed, as in
 * compare.ts: with the writer, it includes reading and applying the changes (that is the point); in
 * both, it includes answering the probe (its rate is in the JSON).
 *
 * Needs `cc`. Generated data and the compiled client are cached in the work directory; the
 * journal is written afresh each run (about 5 MB a second at 10 000 changes a second).
 *
 * @module
 */

import { generateJournal, writeRegistrations } from "../testing/gen_regs.ts";
import type {
  Cleanups,
  LoadgenResult,
  LoadgenSetup,
  LoadMeasures,
  Protocol,
  SipdirServer,
} from "./harness.ts";
import {
  CommandLine,
  ConnReader,
  cpuTicks,
  describeRun,
  entriesFlag,
  generateOnce,
  integerFlag,
  LOAD_COLUMNS,
  loadgenSetup,
  loadMedians,
  markdownTable,
  mb,
  median,
  optionalFlag,
  printRunInfo,
  readLines,
  reportErrors,
  requireTools,
  residentBytes,
  RUN_COLUMNS,
  runLoadgen,
  runMain,
  runSecondsFlag,
  sleep,
  startSipdir,
  stopper,
  switchFlag,
  Table,
  textFlag,
  WARMUP_SECONDS,
  writeAll,
  writeResults,
} from "./harness.ts";

/** Whether the writer appends to the journal during a run. */
type Writer = "with" | "without";

const PROTOCOLS: Protocol[] = ["line", "redis"];
const CONNECTIONS = 32;
const IN_FLIGHT = [1, 16];
/** The AOR whose registration carries the time it was written. */
const PROBE_AOR = "journal-probe";
/** Milliseconds between two batches of the writer. */
const BATCH_MS = 10;
/** Batches before its own whose times the probe carries: 500 ms of them. */
const PROBE_HISTORY = 50;
/** How long sipdir may take to apply what was written once the writer paused. */
const CATCH_UP_TIMEOUT_MS = 30_000;

const COMMAND_LINE = new CommandLine("bench/journal_load.ts", {
  entries: entriesFlag("100000"),
  seconds: runSecondsFlag("4"),
  rounds: integerFlag("3", "rounds; each runs every cell with and without the writer", {
    short: "r",
    placeholder: "ROUNDS",
  }),
  rate: integerFlag("10000", "journal lines appended per second, probe included", {
    placeholder: "CHANGES",
  }),
  lineWrites: switchFlag("the writer appends each line with a write of its own, not a batch"),
  json: optionalFlag("where to write the results (default WORK/journal-latest.json)", {
    placeholder: "FILE",
  }),
  work: textFlag("/tmp/sipdir-journal-bench", "data, client, journal and logs", {
    placeholder: "DIR",
  }),
});

const encoder = new TextEncoder();

// ---------------------------------------------------------------------------------------------
// Options

function parseOptions(args: string[]) {
  const options = COMMAND_LINE.parse(args);
  // A tenth of the AORs take the deletes: there must be one.
  if (options.entries < 10) {
    COMMAND_LINE.error(`-n wants at least 10 registrations, not ${options.entries}`);
  }
  return { ...options, json: options.json ?? `${options.work}/journal-latest.json` };
}

/** What the command line asks for. */
type Options = ReturnType<typeof parseOptions>;

// ---------------------------------------------------------------------------------------------
// Data

/** The files of one size of data. */
interface Data {
  /** The dump: `{"sequence":0}`, the generated registrations, the probe's. */
  regs: string;
  /** Every distinct AOR of the dump but the probe, one a line: what the journal changes. */
  aors: string;
  /** The AORs the load generator asks for: those the journal never deletes. */
  keys: string;
  /** How many AORs each file holds. */
  counts: { aors: number; keys: number };
}

/**
 * The probe's registration in batch `batch` (0: the dump's), written at `writtenAt` (ms since
 * the epoch, 0 in the dump); `earlier` says how long before it the batches before were written,
 * newest first (in ms), so that the prober can tell when each was applied.
 */
function probeRecord(batch: number, writtenAt: string, earlier: string[]): string {
  return `{"addressOfRecord":"${PROBE_AOR}","contact":"<sip:${PROBE_AOR}@127.0.0.1:5060>",` +
    `"batch":${batch},"writtenAt":${writtenAt},"earlier":[${earlier.join(",")}]}`;
}

/** Generates the dump and its AOR lists once per size; later runs reuse them. */
async function prepareData(work: string, entries: number): Promise<Data> {
  const data = {
    regs: `${work}/regs-${entries}.jsonl`,
    aors: `${work}/aors-${entries}.txt`,
    keys: `${work}/keys-${entries}.txt`,
  };
  await generateOnce(
    [data.regs, data.aors, data.keys],
    `${entries} registrations into ${data.regs}`,
    async () => {
      const result = await writeRegistrations({
        count: entries,
        out: `${data.regs}.tmp`,
        sequence: 0,
      });
      if (result.aors.includes(PROBE_AOR)) throw new Error(`the dump already holds ${PROBE_AOR}`);
      using regs = await Deno.open(`${data.regs}.tmp`, { append: true });
      await writeAll(regs, encoder.encode(probeRecord(0, "0", []) + "\n"));
      const keys = result.aors.filter((_, i) => !heldOut(i));
      await Deno.writeTextFile(`${data.aors}.tmp`, result.aors.join("\n") + "\n");
      await Deno.writeTextFile(`${data.keys}.tmp`, keys.join("\n") + "\n");
    },
  );
  const aors = await readLines(data.aors);
  const keys = await readLines(data.keys);
  return { ...data, counts: { aors: aors.length, keys: keys.length } };
}

/** Whether the `i`th AOR of the dump is one the journal may delete (and lookups never ask). */
function heldOut(i: number): boolean {
  return i % 10 === 9;
}

// ---------------------------------------------------------------------------------------------
// The writer, a child process

/** What the writer is started with (as JSON after `--writer`). */
interface WriterConfig {
  journal: string;
  aors: string;
  rate: number;
  /** The dump's sequence number: the first line written is the next. */
  sequence: number;
  /** Each line a write of its own, as an exporter that appends a change as it comes. */
  lineWrites: boolean;
}

/** What the writer answers to `pause`: what it did since `start`. */
interface WriterReport {
  /** Lines appended, probes included. */
  lines: number;
  /** Batches (one write and one probe each). */
  batches: number;
  /** From `start` to the last batch. */
  seconds: number;
  /** The sequence number of the last line appended. */
  lastSeq: number;
  /** The longest time between two batches, in ms. */
  maxGapMs: number;
}

/** Writes all of `text` to `file`, synchronously: one write for a line. */
function writeAllSync(file: Deno.FsFile, text: string): void {
  const bytes = encoder.encode(text);
  for (let done = 0; done < bytes.length;) done += file.writeSync(bytes.subarray(done));
}

/**
 * The writer: appends to the journal while started, in batches every {@linkcode BATCH_MS} ms.
 * Reads `start` and `pause` on stdin, one a line, and answers each with a JSON line on stdout
 * (`pause` with a {@linkcode WriterReport}, once the batch being written is written); exits when
 * stdin ends.
 */
async function writerMain(config: WriterConfig): Promise<void> {
  const aors = await readLines(config.aors);
  const deletable = aors.filter((_, i) => heldOut(i));
  const askedFor = new Set(aors.filter((_, i) => !heldOut(i)));
  const changes = generateJournal({ aors, changes: Number.MAX_SAFE_INTEGER, sequence: 0 });
  using journal = await Deno.open(config.journal, { append: true });
  let seq = config.sequence;
  let deletes = 0;
  let batch = 0;
  /** When the last batches were written, newest first (at most PROBE_HISTORY). */
  const history: number[] = [];

  /** A generated line without its number, with a delete moved off the AORs asked for. */
  const unnumbered = (): string => {
    const generated: string = changes.next().value!;
    // `{"seq":N,"put":{…}}` or `{"seq":N,"del":"aor"}`: renumbered (probes take numbers too).
    const rest = generated.slice(generated.indexOf(","));
    if (!rest.startsWith(',"del":') || !askedFor.has(JSON.parse(rest.slice(7, -1)))) return rest;
    return `,"del":${JSON.stringify(deletable[deletes++ % deletable.length])}}`;
  };
  // Generated before the runs, so that while they run the writer costs what an exporter
  // appending ready lines costs, not the making of registrations: 12 s of changes, used in turn.
  const prepared = Array.from({ length: config.rate * 12 }, unnumbered);
  let next = 0;
  /** The next change, numbered on. */
  const nextChange = (): string => {
    const rest = prepared[next];
    next = (next + 1) % prepared.length;
    return `{"seq":${++seq}${rest}`;
  };

  let running: Promise<WriterReport> | null = null;
  let stopRequested = false;
  const run = async (): Promise<WriterReport> => {
    const t0 = performance.now();
    let lines = 0;
    let batches = 0;
    let last = t0;
    let maxGap = 0;
    for (let k = 1; !stopRequested; k++) {
      await sleep(t0 + k * BATCH_MS - performance.now());
      if (stopRequested) break;
      const now = performance.now();
      const due = Math.floor((now - t0) * config.rate / 1000) - lines;
      if (due < 1) continue;
      const batchLines: string[] = [];
      for (let i = 1; i < due; i++) batchLines.push(nextChange() + "\n");
      const writtenAt = performance.timeOrigin + performance.now();
      const earlier = history.map((at) => (writtenAt - at).toFixed(3));
      const probe = probeRecord(++batch, writtenAt.toFixed(3), earlier);
      batchLines.push(`{"seq":${++seq},"put":${probe}}\n`);
      history.unshift(writtenAt);
      if (history.length > PROBE_HISTORY) history.pop();
      if (config.lineWrites) {
        for (const line of batchLines) writeAllSync(journal, line);
      } else {
        await writeAll(journal, encoder.encode(batchLines.join("")));
      }
      lines += due;
      batches++;
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }
    return {
      lines,
      batches,
      seconds: (last - t0) / 1000,
      lastSeq: seq,
      maxGapMs: Math.round(maxGap * 10) / 10,
    };
  };

  const say = (value: unknown) =>
    writeAll(Deno.stdout, encoder.encode(JSON.stringify(value) + "\n"));
  for await (const command of textLines(Deno.stdin.readable)) {
    if (command === "start" && running === null) {
      stopRequested = false;
      running = run();
      await say({ started: seq });
    } else if (command === "pause" && running !== null) {
      stopRequested = true;
      await say(await running);
      running = null;
    } else {
      throw new Error(`writer: unexpected command ${command}`);
    }
  }
  stopRequested = true;
  await running;
}

/** The lines of a byte stream, without their line ends. */
async function* textLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffered = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffered += chunk;
    for (let end = buffered.indexOf("\n"); end >= 0; end = buffered.indexOf("\n")) {
      yield buffered.slice(0, end);
      buffered = buffered.slice(end + 1);
    }
  }
  if (buffered !== "") yield buffered;
}

/** The writer process, seen from the parent. */
class WriterProcess {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #replies: AsyncGenerator<string>;
  /** Stops the process (it is in the clean-ups until then). */
  readonly stop: () => Promise<void>;

  constructor(config: WriterConfig, cleanups: Cleanups) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "--allow-read", "--allow-write", new URL(import.meta.url).pathname],
        ...["--writer", JSON.stringify(config)],
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.stop = stopper(this.#child);
    cleanups.add(this.stop);
    this.#stdin = this.#child.stdin.getWriter();
    this.#replies = textLines(this.#child.stdout);
  }

  /** The writer's process id. */
  get pid(): number {
    return this.#child.pid;
  }

  /** Starts appending; resolves once it started. */
  async start(): Promise<void> {
    await this.#ask("start");
  }

  /** Stops appending; resolves, once the last batch is written, with what it did. */
  async pause(): Promise<WriterReport> {
    return JSON.parse(await this.#ask("pause"));
  }

  /** Ends the process (stdin closed) and waits for it. */
  async close(cleanups: Cleanups): Promise<void> {
    await this.#stdin.close();
    const status = await this.#child.status;
    cleanups.remove(this.stop);
    if (!status.success) throw new Error(`the writer exited with status ${status.code}`);
  }

  async #ask(command: string): Promise<string> {
    await this.#stdin.write(encoder.encode(command + "\n"));
    const reply = await this.#replies.next();
    if (reply.done) throw new Error(`the writer exited instead of answering ${command}`);
    return reply.value;
  }
}

// ---------------------------------------------------------------------------------------------
// The prober

/** Apply latencies, in ms, from append to an answer holding the line. */
interface LatencySummary {
  samples: number;
  /** Batches applied so long after their probe's history ran out that their time is unknown. */
  missed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Where the prober records apply latencies. */
interface LatencySink {
  /** One per batch, in ms. */
  samples: number[];
  /** Batches whose time the probe no longer carried when they were seen applied. */
  missed: number;
}

/**
 * Asks sipdir's line port for the probe AOR back to back, one request in flight. When the
 * answer's batch number moved on, every batch since the last seen was applied by now: records
 * now − its writtenAt for each (from the probe's `writtenAt` and `earlier`) into the sink set,
 * if any. (sipdir usually applies two batches per poll: the newer probe alone would give only
 * the freshest lines' latency.)
 */
class Prober {
  readonly #conn: Deno.Conn;
  readonly #reader: ConnReader;
  #running = true;
  readonly #loop: Promise<void>;
  #error: unknown = null;
  /** The batch in the last answer (NaN before the first). */
  #lastBatch = NaN;
  #sink: LatencySink | null = null;
  /** Round trips so far. */
  lookups = 0;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#reader = new ConnReader(conn);
    this.#loop = this.#run().catch((error) => {
      this.#error = error;
    });
  }

  /** Connects to the line port on `port` and starts asking. */
  static async open(port: number): Promise<Prober> {
    return new Prober(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Records the samples from now on into a new sink, which it returns. */
  collect(): LatencySink {
    return this.#sink = { samples: [], missed: 0 };
  }

  /** Stops recording samples. */
  detach(): void {
    this.#sink = null;
  }

  /** Throws what made asking stop, if it did. */
  check(): void {
    if (this.#error !== null) throw new Error(`the prober failed: ${this.#error}`);
  }

  /** Stops asking; fails if asking failed. */
  async close(): Promise<void> {
    this.#running = false;
    await this.#loop;
    this.#conn.close();
    this.check();
  }

  async #run(): Promise<void> {
    const request = encoder.encode(PROBE_AOR + "\n");
    while (this.#running) {
      await writeAll(this.#conn, request);
      const answer = await this.#reader.line();
      const now = performance.timeOrigin + performance.now();
      this.lookups++;
      const match = answer.match(/"batch":(\d+)/);
      if (match === null) throw new Error(`sipdir answered ${PROBE_AOR} with: ${answer}`);
      const batch = Number(match[1]);
      if (batch === this.#lastBatch) continue;
      if (batch > this.#lastBatch) this.#record(batch, JSON.parse(answer), now);
      this.#lastBatch = batch;
    }
  }

  /** The batches after the last seen, up to `batch`, are applied at `now`. */
  #record(batch: number, probe: { writtenAt: number; earlier: number[] }, now: number): void {
    const sink = this.#sink;
    if (sink === null) return;
    for (let b = this.#lastBatch + 1; b <= batch; b++) {
      const back = batch - b;
      if (back === 0) sink.samples.push(now - probe.writtenAt);
      else if (back <= probe.earlier.length) {
        sink.samples.push(now - (probe.writtenAt - probe.earlier[back - 1]));
      } else sink.missed++;
    }
  }
}

/** Nearest-rank percentile `p` (0 to 1) of ascending `sorted`. */
function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
}

function summarizeLatency(sink: LatencySink): LatencySummary {
  const sorted = [...sink.samples].sort((a, b) => a - b);
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    samples: sorted.length,
    missed: sink.missed,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.length === 0 ? NaN : sorted[sorted.length - 1]),
  };
}

// ---------------------------------------------------------------------------------------------
// sipdir's journal metrics

/** What /metrics says of the journal. */
interface JournalMetrics {
  appliedSequence: number;
  linesApplied: number;
  /** Registrations changed since the dump was loaded, and the bytes they hold. */
  changes: number;
  bytes: number;
  errors: number;
}

async function journalMetrics(httpPort: number): Promise<JournalMetrics> {
  const response = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
  const text = await response.text();
  const value = (name: string) => {
    const match = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
    if (match === null) throw new Error(`no ${name} in /metrics`);
    return Number(match[1]);
  };
  return {
    appliedSequence: value("sipdir_journal_applied_sequence"),
    linesApplied: value("sipdir_journal_lines_applied_total"),
    changes: value("sipdir_journal_changes"),
    bytes: value("sipdir_journal_bytes"),
    errors: value("sipdir_journal_errors_total"),
  };
}

/**
 * Waits until sipdir applied sequence `seq`; returns the metrics then and how long it took
 * (polled every 5 ms).
 */
async function caughtUp(
  httpPort: number,
  seq: number,
): Promise<{ metrics: JournalMetrics; ms: number }> {
  const t0 = performance.now();
  for (;;) {
    const metrics = await journalMetrics(httpPort);
    if (metrics.appliedSequence >= seq) return { metrics, ms: performance.now() - t0 };
    if (metrics.errors > 0) throw new Error("sipdir stopped at a bad journal line; see its log");
    if (performance.now() - t0 > CATCH_UP_TIMEOUT_MS) {
      throw new Error(
        `sipdir applied up to ${metrics.appliedSequence}, not ${seq}, ` +
          `${CATCH_UP_TIMEOUT_MS} ms after the writer paused`,
      );
    }
    await sleep(5);
  }
}

// ---------------------------------------------------------------------------------------------
// Measuring

/** What the writer did during a phase, and what sipdir applied of it. */
interface Appending {
  /** Lines the writer appended, and at what rate. */
  linesWritten: number;
  linesPerS: number;
  /** The longest gap between two batches, in ms. */
  maxBatchGapMs: number;
  /** Lines sipdir applied (/metrics delta, to the end of catching up). */
  linesApplied: number;
  /** From the writer's pause to sipdir having applied its last line, in ms. */
  catchUpMs: number;
  /** The writer's own CPU time, in cores, from its start to its pause (not sipdir's). */
  writerCores: number;
}

/** Everything the phases share. */
interface Bench {
  options: Options;
  cleanups: Cleanups;
  sipdir: SipdirServer;
  writer: WriterProcess;
  /** What every lookup run shares. */
  load: LoadgenSetup;
}

/**
 * Runs `during` with the writer appending (started before, paused after) and the prober
 * recording; waits for sipdir to apply the last line.
 */
async function withWriter<T>(
  bench: Bench,
  prober: Prober | null,
  during: () => Promise<T>,
): Promise<{ result: T; appending: Appending; latency: LatencySink }> {
  const http = bench.sipdir.ports.http!;
  const before = await journalMetrics(http);
  const latency = prober?.collect() ?? { samples: [], missed: 0 };
  const writerTicks = await cpuTicks(bench.writer.pid);
  const t0 = performance.now();
  await bench.writer.start();
  let result: T;
  let report: WriterReport;
  try {
    result = await during();
  } finally {
    report = await bench.writer.pause();
  }
  const writerCores = (await cpuTicks(bench.writer.pid) - writerTicks) / bench.load.clockTicks /
    ((performance.now() - t0) / 1000);
  const after = await caughtUp(http, report.lastSeq);
  prober?.detach();
  prober?.check();
  return {
    result,
    appending: {
      linesWritten: report.lines,
      linesPerS: report.seconds > 0 ? report.lines / report.seconds : NaN,
      maxBatchGapMs: report.maxGapMs,
      linesApplied: after.metrics.linesApplied - before.linesApplied,
      catchUpMs: Math.round(after.ms),
      writerCores: Number(writerCores.toFixed(4)),
    },
    latency,
  };
}

/** The apply latency phase's result. */
interface LatencyPhase extends LatencySummary, Appending {
  seconds: number;
  /** Every sample, in ms. */
  samplesMs: number[];
}

/** Apply latency with no load but the prober: a warm-up, then rounds × -d seconds. */
async function measureLatency(bench: Bench, prober: Prober): Promise<LatencyPhase> {
  const seconds = bench.options.rounds * bench.options.seconds;
  let sink: LatencySink = { samples: [], missed: 0 };
  const { appending } = await withWriter(bench, prober, async () => {
    await sleep(WARMUP_SECONDS * 1000);
    sink = prober.collect();
    await sleep(seconds * 1000);
  });
  return {
    seconds,
    ...summarizeLatency(sink),
    ...appending,
    samplesMs: sink.samples.map((ms) => Math.round(ms * 1000) / 1000),
  };
}

/** What applying the changes costs sipdir, with no lookups at all. */
interface ApplyCost {
  seconds: number;
  /** sipdir's CPU time over the window, in cores: idle, then with the writer. */
  idleCores: number;
  applyingCores: number;
  /** Lines applied in the window with the writer. */
  linesApplied: number;
  /** (applying − idle) CPU time per line applied, in µs. */
  cpuUsPerLine: number;
  /** The writer's run, warm-up included. */
  appending: Appending;
}

/**
 * sipdir's CPU time with nothing to do, then while the writer appends (after a warm-up), each for
 * -d seconds; no prober or other client meanwhile.
 */
async function measureApplyCost(bench: Bench): Promise<ApplyCost> {
  const seconds = bench.options.seconds;
  const { pid, ports } = bench.sipdir;
  const window = async () => {
    const ticks = await cpuTicks(pid);
    const metrics = await journalMetrics(ports.http!);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const elapsed = (performance.now() - t0) / 1000;
    const cores = (await cpuTicks(pid) - ticks) / bench.load.clockTicks / elapsed;
    return {
      cores,
      elapsed,
      lines: (await journalMetrics(ports.http!)).linesApplied - metrics.linesApplied,
    };
  };
  const idle = await window();
  const { result: applying, appending } = await withWriter(bench, null, async () => {
    await sleep(WARMUP_SECONDS * 1000);
    return await window();
  });
  const round = (x: number, digits: number) => Number(x.toFixed(digits));
  return {
    seconds,
    idleCores: round(idle.cores, 4),
    applyingCores: round(applying.cores, 4),
    linesApplied: applying.lines,
    cpuUsPerLine: round(
      (applying.cores - idle.cores) * applying.elapsed / applying.lines * 1e6,
      2,
    ),
    appending,
  };
}

/** One lookup run: one cell, one round, with or without the writer. */
interface Run extends LoadgenResult {
  writer: Writer;
  protocol: Protocol;
  connections: number;
  inFlight: number;
  round: number;
  /** Probe lookups per second meanwhile (answered by sipdir, not counted in ops). */
  probesPerS: number;
  /** With the writer: what it appended and sipdir applied, and the apply latency meanwhile. */
  appending?: Appending;
  applyLatency?: LatencySummary;
}

async function measureRun(
  bench: Bench,
  prober: Prober,
  cell: { writer: Writer; protocol: Protocol; inFlight: number; round: number },
): Promise<Run> {
  const { sipdir } = bench;
  const load = () =>
    runLoadgen({
      ...bench.load,
      port: sipdir.ports[cell.protocol]!,
      mode: cell.protocol,
      connections: CONNECTIONS,
      inFlight: cell.inFlight,
      cpuPid: sipdir.pid,
    }, bench.cleanups);
  const probesBefore = prober.lookups;
  const t0 = performance.now();
  const base = {
    writer: cell.writer,
    protocol: cell.protocol,
    connections: CONNECTIONS,
    inFlight: cell.inFlight,
    round: cell.round,
  };
  if (cell.writer === "without") {
    const result = await load();
    prober.check();
    const probesPerS = (prober.lookups - probesBefore) / ((performance.now() - t0) / 1000);
    return { ...base, ...result, probesPerS: Math.round(probesPerS) };
  }
  const { result, appending, latency } = await withWriter(bench, prober, load);
  const probesPerS = (prober.lookups - probesBefore) / ((performance.now() - t0) / 1000);
  return {
    ...base,
    ...result,
    probesPerS: Math.round(probesPerS),
    appending,
    applyLatency: summarizeLatency(latency),
  };
}

/** Every lookup run, printed as it completes. */
async function runAll(bench: Bench, prober: Prober): Promise<Run[]> {
  const runs: Run[] = [];
  RUN_TABLE.printHeader();
  for (const protocol of PROTOCOLS) {
    for (const inFlight of IN_FLIGHT) {
      for (let round = 1; round <= bench.options.rounds; round++) {
        // Alternating which goes first cancels drift within a cell.
        const order: Writer[] = round % 2 === 1 ? ["with", "without"] : ["without", "with"];
        for (const writer of order) {
          const run = await measureRun(bench, prober, { writer, protocol, inFlight, round });
          RUN_TABLE.printRow(run);
          runs.push(run);
        }
      }
    }
  }
  return runs;
}

// ---------------------------------------------------------------------------------------------
// Summary

/** Medians over rounds of one cell, with or without the writer. */
interface CellMedians extends LoadMeasures {
  /** With the writer: the apply latency under this load (medians of the runs' percentiles). */
  applyP50Ms?: number;
  applyP99Ms?: number;
}

/** One cell: protocol × requests in flight. */
interface Cell {
  protocol: Protocol;
  connections: number;
  inFlight: number;
  medians: Record<Writer, CellMedians>;
  /** With ÷ without, by measure name: the median over rounds of each round's ratio. */
  ratios: Record<string, number>;
}

const RATIO_MEASURES: [string, (m: LoadMeasures) => number][] = [
  ["throughput", (m) => m.opsPerS],
  ["p99 latency", (m) => m.p99Us],
  ["p99.9 latency", (m) => m.p999Us],
  ["CPU per lookup", (m) => m.cpuUsPerLookup],
];

function summarize(runs: Run[]): Cell[] {
  const cells: Cell[] = [];
  for (const protocol of PROTOCOLS) {
    for (const inFlight of IN_FLIGHT) {
      const of = (writer: Writer) =>
        cellMedians(
          runs.filter((r) =>
            r.writer === writer && r.protocol === protocol && r.inFlight === inFlight
          ),
        );
      const medians = { with: of("with"), without: of("without") };
      // Each round's run with the writer against its run without, next to it in time: the
      // machine's drift over minutes moves both alike, where it moves medians apart.
      const cell = runs.filter((r) => r.protocol === protocol && r.inFlight === inFlight);
      const pairs = [...new Set(cell.map((r) => r.round))].map((round) => ({
        with: cell.find((r) => r.round === round && r.writer === "with")!,
        without: cell.find((r) => r.round === round && r.writer === "without")!,
      }));
      const ratios = Object.fromEntries(
        RATIO_MEASURES.map((
          [name, pick],
        ) => [name, median(pairs.map((p) => pick(p.with) / pick(p.without)))]),
      );
      cells.push({ protocol, connections: CONNECTIONS, inFlight, medians, ratios });
    }
  }
  return cells;
}

function cellMedians(runs: Run[]): CellMedians {
  const medians: CellMedians = loadMedians(runs);
  if (runs.every((r) => r.applyLatency !== undefined)) {
    medians.applyP50Ms = median(runs.map((r) => r.applyLatency!.p50Ms));
    medians.applyP99Ms = median(runs.map((r) => r.applyLatency!.p99Ms));
  }
  return medians;
}

// ---------------------------------------------------------------------------------------------
// Printing

function ms(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? "-" : value.toFixed(2);
}

function printLatency(phase: LatencyPhase, rate: number): void {
  console.log(
    `\nApply latency: from a line's append to sipdir answering with it, ${rate} changes/s, ` +
      `no other load, ${phase.seconds} s:\n`,
  );
  const table = new Table<LatencyPhase>([
    ["samples", 7, (p) => p.samples],
    ["missed", 6, (p) => p.missed],
    ["p50 ms", 7, (p) => ms(p.p50Ms)],
    ["p99 ms", 7, (p) => ms(p.p99Ms)],
    ["max ms", 7, (p) => ms(p.maxMs)],
    ["written lines/s", 15, (p) => Math.round(p.linesPerS)],
    ["lines written", 13, (p) => p.linesWritten],
    ["lines applied", 13, (p) => p.linesApplied],
    ["catch-up ms", 11, (p) => p.catchUpMs],
    ["writer CPU", 10, (p) => `${(p.writerCores * 100).toFixed(1)}%`],
  ]);
  table.printHeader();
  table.printRow(phase);
  console.log(
    "(a sample per batch; missed: batches seen applied after their time left the probe; written " +
      "and applied count from the writer's start, warm-up included; catch-up: from the writer's " +
      "pause to the last line applied)",
  );
}

function printApplyCost(cost: ApplyCost, rate: number, when: string): void {
  const percent = (cores: number) => `${(cores * 100).toFixed(1)}%`;
  console.log(
    `\nsipdir's CPU applying ${rate} changes/s with no lookups, ${when} (${cost.seconds} s): ` +
      `${percent(cost.applyingCores)} of a core (idle: ${percent(cost.idleCores)}), ` +
      `${cost.cpuUsPerLine.toFixed(2)} µs per line applied (${cost.linesApplied} lines); ` +
      `the writer's own CPU: ${percent(cost.appending.writerCores)} of a core`,
  );
}

const RUN_TABLE = new Table<Run>([
  ["writer", 7, (r) => r.writer],
  ["protocol", 8, (r) => r.protocol],
  ["in-flight", 9, (r) => r.inFlight],
  ...RUN_COLUMNS,
  ["lines/s", 7, (r) => r.appending === undefined ? "-" : Math.round(r.appending.linesPerS)],
  ["applied", 7, (r) => r.appending === undefined ? "-" : r.appending.linesApplied],
  ["apply p50 ms", 12, (r) => ms(r.applyLatency?.p50Ms)],
  ["apply p99 ms", 12, (r) => ms(r.applyLatency?.p99Ms)],
]);

/** A row of the medians' table: one cell, with or without the writer. */
interface MediansRow extends CellMedians {
  protocol: Protocol;
  inFlight: number;
  writer: Writer;
}

function printMedians(cells: Cell[], rounds: number): void {
  console.log(`\nMedians over ${rounds} round(s), ${CONNECTIONS} connections:\n`);
  const table = new Table<MediansRow>([
    ["protocol", 8, (r) => r.protocol],
    ["in-flight", 9, (r) => r.inFlight],
    ["writer", 7, (r) => r.writer],
    ...LOAD_COLUMNS,
    ["apply p50 ms", 12, (r) => ms(r.applyP50Ms)],
    ["apply p99 ms", 12, (r) => ms(r.applyP99Ms)],
  ]);
  table.printHeader();
  for (const { protocol, inFlight, medians } of cells) {
    for (const writer of ["without", "with"] as const) {
      table.printRow({ ...medians[writer], protocol, inFlight, writer });
    }
  }
}

/** The ratios as a Markdown table, one row per cell, and what else ran meanwhile. */
function printRatios(cells: Cell[], rate: number, runs: Run[]): void {
  console.log(
    `\nWith ÷ without ${rate} changes/s (${CONNECTIONS} connections; the median of the rounds' ` +
      "ratios; above 1 is better for throughput, below 1 for latency and CPU):\n",
  );
  const label = (c: Cell) =>
    `${c.protocol === "line" ? "line" : "Redis port"}, ${c.inFlight} in flight`;
  const measures = RATIO_MEASURES.map(([name]) => name);
  console.log(markdownTable(
    ["Cell", ...measures],
    cells.map((cell) => [label(cell), ...measures.map((m) => cell.ratios[m].toFixed(2))]),
  ));
  const writerCores = median(runs.flatMap((r) => r.appending ? [r.appending.writerCores] : []));
  const probesPerS = median(runs.map((r) => r.probesPerS));
  console.log(
    "\nCPU per lookup: sipdir's CPU time (all threads) over the lookups the load generator " +
      "completed; with the writer it includes reading and applying the changes, and both " +
      `include answering the probe (median ${Math.round(probesPerS)} lookups/s). The writer ` +
      `itself took a median ${(writerCores * 100).toFixed(1)}% of a core, on this ` +
      `${navigator.hardwareConcurrency}-core machine shared with sipdir and the load generator.`,
  );
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(cleanups: Cleanups): Promise<number> {
  const options = parseOptions(Deno.args);
  await requireTools("journal_load", ["cc"]);
  cleanups.stopOnSignals("\ninterrupted: stopping sipdir and the writer");
  await Deno.mkdir(options.work, { recursive: true });
  const info = await describeRun();
  printRunInfo(info);

  const data = await prepareData(options.work, options.entries);
  const load = await loadgenSetup(options.work, data.keys, options.seconds);
  const journal = `${options.work}/journal.jsonl`;
  await Deno.writeTextFile(journal, "");
  const sipdir = await startSipdir({
    data: data.regs,
    args: ["--journal", journal, "--redis-port", "0", "--http-port", "0"],
    logFile: `${options.work}/sipdir.log`,
  }, cleanups);
  if (sipdir.loaded !== data.counts.aors + 1) {
    throw new Error(`sipdir loaded ${sipdir.loaded} entries, not ${data.counts.aors + 1}`);
  }
  const rssAfterLoad = await residentBytes(sipdir.pid);
  console.log(
    `${sipdir.loaded} AORs loaded (the probe's included); lookups ask for ${data.counts.keys} ` +
      `of them, the journal deletes only among the other ${
        data.counts.aors - data.counts.keys
      }; resident memory ${mb(rssAfterLoad)}`,
  );

  const bench: Bench = {
    options,
    cleanups,
    sipdir,
    writer: new WriterProcess(
      { journal, aors: data.aors, rate: options.rate, sequence: 0, lineWrites: options.lineWrites },
      cleanups,
    ),
    load,
  };
  // First with no client at all, then with the prober from here on.
  const applyCost = await measureApplyCost(bench);
  printApplyCost(applyCost, options.rate, "first changes of most registrations");
  const prober = await Prober.open(sipdir.ports.line);
  const latency = await measureLatency(bench, prober);
  printLatency(latency, options.rate);
  console.log();
  const runs = await runAll(bench, prober);
  // It asks over and over: alone, it would take more of a core than applying does.
  await prober.close();
  // Again once most registrations were changed many times: their entries exist, their old bytes
  // are garbage that compaction gives back, where at first each change was a new entry in new
  // memory.
  const applyCostAfterRuns = await measureApplyCost(bench);
  printApplyCost(applyCostAfterRuns, options.rate, "registrations changed before, after the runs");
  const rssAfterRuns = await residentBytes(sipdir.pid);
  const journalAtEnd = await journalMetrics(sipdir.ports.http!);
  const journalBytes = (await Deno.stat(journal)).size;
  await bench.writer.close(cleanups);
  await cleanups.runAll();

  const summary = summarize(runs);
  printMedians(summary, options.rounds);
  printRatios(summary, options.rate, runs);
  console.log(
    `\nAt the end: sipdir applied up to sequence ${journalAtEnd.appliedSequence}, holds ` +
      `${journalAtEnd.changes} changed registrations (${mb(journalAtEnd.bytes)}); resident ` +
      `memory ${mb(rssAfterLoad)} after load, ${mb(rssAfterRuns)} after the runs; the journal ` +
      `is ${mb(journalBytes)}.\n`,
  );
  printRunInfo(info);
  await writeResults(options.json, {
    ...info,
    options,
    connections: CONNECTIONS,
    distinctAors: data.counts.aors,
    lookupKeys: data.counts.keys,
    rssAfterLoad,
    rssAfterRuns,
    journalAtEnd,
    journalBytes,
    latency,
    applyCost,
    applyCostAfterRuns,
    runs,
    summary,
  });
  return reportErrors(runs, (r) => `${r.writer} writer, ${r.protocol} P=${r.inFlight}`);
}

if (import.meta.main) {
  if (Deno.args[0] === "--writer") await writerMain(JSON.parse(Deno.args[1]));
  else await runMain("journal_load", main);
}
