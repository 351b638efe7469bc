/**
 * Logging setup with LogTape, in the old server's line format:
 * `LEVEL timestamp host program[pid]: message`.
 *
 * Library modules log through `getLogger(["sipdir", …])`; only the program
 * decides where the records go, by calling {@linkcode setupLogging}.
 *
 * @module
 */

import { getFileSink } from "@logtape/file";
import {
  configure,
  dispose,
  getJsonLinesFormatter,
  getTextFormatter,
  type LogRecord,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";

/** Who is logging: the fields of the line prefix. */
export interface LogIdentity {
  /** Host name; defaults to this host's. */
  host?: string;
  /** Program name. Default "sipdir". */
  program?: string;
  /** Process id; defaults to this process's. */
  pid?: number;
}

/** `text`: the old server's lines; `json`: one JSON object per line, for log pipelines. */
export type LogFormat = "text" | "json";

/** Options of {@linkcode setupLogging}. */
export interface LogOptions extends LogIdentity {
  /** Line format. Default "text". */
  format?: LogFormat;
  /** Append to this file instead of writing to the console (stderr). */
  file?: string;
  /** Include debug records: connections, requests, counters. */
  verbose?: boolean;
  /** Where console records go; stderr by default. */
  console?: { writeSync(p: Uint8Array): number };
}

/**
 * A formatter for lines like
 * `INFO 2026-11-28T01:33:49.123Z host1 sipdir[812]: listening on 127.0.0.1:1234`.
 */
function lineFormatter(identity: LogIdentity = {}): TextFormatter {
  const host = identity.host ?? hostname();
  const program = identity.program ?? "sipdir";
  const pid = identity.pid ?? Deno.pid;
  return getTextFormatter({
    timestamp: "rfc3339",
    level: "FULL",
    // Strings bare (no quotes), but with control characters escaped: AORs
    // come from the network.
    value: "bare",
    format: ({ timestamp, level, message }) =>
      `${level} ${timestamp} ${host} ${program}[${pid}]: ${message}`,
  });
}

/**
 * A formatter for JSON Lines: LogTape's, with the structured properties as
 * fields of their own (`peer`, `aor`, `result` …), and the host and process
 * id that the text format puts in its prefix.
 * `{"host":"host1","pid":812,"@timestamp":"…","level":"INFO","message":"…","logger":"sipdir",…}`
 */
function jsonFormatter(identity: LogIdentity = {}): TextFormatter {
  const prefix = `{"host":${JSON.stringify(identity.host ?? hostname())},"pid":${
    identity.pid ?? Deno.pid
  },`;
  const format = getJsonLinesFormatter({ properties: "flatten" });
  return (record) => prefix + format(record).slice(1);
}

/**
 * A sink writing each formatted record synchronously, so that nothing is
 * lost when the process exits right after.
 */
function writerSink(
  writer: { writeSync(p: Uint8Array): number },
  formatter: TextFormatter,
): Sink {
  const encoder = new TextEncoder();
  return (record: LogRecord) => {
    const bytes = encoder.encode(formatter(record));
    let done = 0;
    while (done < bytes.length) done += writer.writeSync(bytes.subarray(done));
  };
}

/**
 * Routes sipdir's log records to the console or to a file. Call
 * {@linkcode closeLogging} before exiting, to flush the file.
 * Throws if the log file cannot be opened.
 */
export async function setupLogging(options: LogOptions = {}): Promise<void> {
  const formatter = options.format === "json" ? jsonFormatter(options) : lineFormatter(options);
  const sink: Sink = options.file === undefined
    ? writerSink(options.console ?? Deno.stderr, formatter)
    : getFileSink(options.file, { formatter, bufferSize: 8192, flushInterval: 1000 });
  await configure({
    reset: true,
    sinks: { main: sink },
    loggers: [
      { category: ["sipdir"], lowestLevel: options.verbose ? "debug" : "info", sinks: ["main"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["main"] },
    ],
  });
}

/** Flushes and closes what {@linkcode setupLogging} opened. */
export async function closeLogging(): Promise<void> {
  await dispose();
}

function hostname(): string {
  try {
    return Deno.hostname();
  } catch {
    // Without --allow-sys=hostname; the line format still needs a field.
    return "-";
  }
}
