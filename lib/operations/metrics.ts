/**
 * The counters and gauges in Prometheus's text exposition format (0.0.4).
 * Built only when scraped, from the plain fields the hot path increments: a
 * scrape costs lookups nothing.
 *
 * @module
 */

import type { LiveDirectory } from "../directory/live.ts";
import type { Counters, ProtocolField } from "./counters.ts";

/** The last reload's outcome. */
export interface ReloadOutcome {
  /** When it ended, in milliseconds since the epoch. */
  at: number;
  /** It was swapped in (not failed, not refused). */
  ok: boolean;
}

/** What the metrics are read from. */
export interface MetricsSource {
  /** The process's counters. */
  counters: Counters;
  /** The directory served, once loaded. */
  live?: LiveDirectory;
  /** The last reload, if any. */
  lastReload?: ReloadOutcome;
  /** sipdir's version. */
  version: string;
  /** When the process started, in milliseconds since the epoch. */
  startedAt: number;
  /** `--max-clients`, to alert on before it is reached. */
  maxClients?: number;
  /** What /readyz answers: loaded, listening and not stopping. */
  ready?: boolean;
  /** Bytes all clients hold now (buffers, commands' kept arguments and queues). */
  clientMemory?: number;
  /** `--max-client-memory`. */
  maxClientMemory?: number;
  /** `--journal`'s state, when one is followed. */
  journal?: {
    readonly applied: number;
    readonly faulted: boolean;
    readonly appliedAt: number;
  };
}

type Sample = [labels: Record<string, string>, value: number];

/** Per-protocol counters: metric name, field, help. */
const PER_PROTOCOL: [string, ProtocolField, string][] = [
  ["sipdir_lookups_total", "lookups", "Requests answered: lines, or keys of GET, MGET and EXISTS."],
  ["sipdir_lookup_hits_total", "hits", "Lookups answered with a registration."],
  ["sipdir_lookup_misses_total", "misses", "Lookups of unknown AORs."],
  [
    "sipdir_protocol_errors_total",
    "protocolErrors",
    "Connections closed for bad input (lines over --max-line, malformed commands).",
  ],
  ["sipdir_socket_writes_total", "writes", "Socket writes of replies."],
  ["sipdir_received_bytes_total", "bytesIn", "Bytes of requests read."],
  ["sipdir_sent_bytes_total", "bytesOut", "Bytes of replies written."],
];

/**
 * The exposition of `source`, one `# HELP`, one `# TYPE` and the samples of
 * each metric.
 *
 * @example
 * ```ts
 * import { Counters } from "./counters.ts";
 * import { formatMetrics } from "./metrics.ts";
 * import assert from "node:assert/strict";
 * const counters = new Counters();
 * counters.protocol("line").lookups = 3;
 * const text = formatMetrics({ counters, version: "1.0.0", startedAt: 0 });
 * assert.ok(text.includes('sipdir_lookups_total{protocol="line"} 3\n'));
 * assert.ok(text.includes('sipdir_build_info{version="1.0.0"} 1\n'));
 * ```
 */
export function formatMetrics(source: MetricsSource): string {
  const { counters, live, lastReload } = source;
  const lines: string[] = [];
  const metric = (name: string, type: "counter" | "gauge", help: string, samples: Sample[]) => {
    lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    lines.push(`# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) lines.push(`${name}${formatLabels(labels)} ${value}`);
  };
  const one = (value: number): Sample[] => [[{}, value]];

  metric("sipdir_build_info", "gauge", "sipdir's version, as a label; the value is 1.", [
    [{ version: source.version }, 1],
  ]);
  if (source.ready !== undefined) {
    metric(
      "sipdir_ready",
      "gauge",
      "1 when /readyz answers 200 (data loaded, ports listening, not stopping), else 0.",
      one(source.ready ? 1 : 0),
    );
  }
  metric(
    "sipdir_connections_accepted_total",
    "counter",
    "Connections accepted and served, all ports.",
    one(counters.accepted),
  );
  metric(
    "sipdir_connections_rejected_total",
    "counter",
    "Connections closed at once because --max-clients were open.",
    one(counters.rejected),
  );
  metric(
    "sipdir_connections_idle_closed_total",
    "counter",
    "Connections closed after --timeout (or --redis-timeout) without progress.",
    one(counters.idleClosed),
  );
  metric(
    "sipdir_connection_errors_total",
    "counter",
    "Connections that ended with an error (reset, broken pipe).",
    one(counters.connectionErrors),
  );
  metric(
    "sipdir_accept_errors_total",
    "counter",
    "Failed accepts (out of descriptors, reset before accept).",
    one(counters.acceptErrors),
  );
  metric(
    "sipdir_connection_faults_total",
    "counter",
    "Connections closed by a fault in sipdir's handling of them (a bug: see the ERROR log).",
    one(counters.connectionFaults),
  );
  metric(
    "sipdir_connections_denied_total",
    "counter",
    "Connections to the Redis port refused by protected mode (not loopback, no password).",
    one(counters.denied),
  );
  metric(
    "sipdir_connections_evicted_total",
    "counter",
    "Connections closed because all clients held over --max-client-memory.",
    one(counters.evicted),
  );
  if (source.clientMemory !== undefined) {
    metric(
      "sipdir_client_memory_bytes",
      "gauge",
      "Bytes all clients hold: read and reply buffers, commands' kept arguments and queues.",
      one(source.clientMemory),
    );
  }
  if (source.maxClientMemory !== undefined) {
    metric(
      "sipdir_client_memory_max_bytes",
      "gauge",
      "--max-client-memory: past it, the clients holding the most are closed.",
      one(source.maxClientMemory),
    );
  }
  metric(
    "sipdir_connections_open",
    "gauge",
    "Connections open now, all ports.",
    one(counters.open),
  );
  if (source.maxClients !== undefined) {
    metric(
      "sipdir_connections_max",
      "gauge",
      "Connections served at once (--max-clients); more are refused.",
      one(source.maxClients),
    );
  }
  const protocols = counters.protocols();
  for (const [name, field, help] of PER_PROTOCOL) {
    metric(name, "counter", help, protocols.map((p) => [{ protocol: p.protocol }, p[field]]));
  }
  metric("sipdir_reloads_total", "counter", "Reloads swapped in.", one(counters.reloads));
  metric(
    "sipdir_reload_failures_total",
    "counter",
    "Reloads that kept the old data because the new file was bad.",
    one(counters.reloadFailures),
  );
  metric(
    "sipdir_reload_refusals_total",
    "counter",
    "Reloads refused for having too few entries (--reload-min-ratio).",
    one(counters.reloadRefusals),
  );
  metric(
    "sipdir_last_reload_timestamp_seconds",
    "gauge",
    "When the last reload ended, in seconds since the epoch; 0 before the first.",
    one(lastReload === undefined ? 0 : lastReload.at / 1000),
  );
  metric(
    "sipdir_last_reload_success",
    "gauge",
    "1 if the last reload was swapped in (or none happened yet), 0 if it failed or was refused.",
    one(lastReload === undefined || lastReload.ok ? 1 : 0),
  );
  if (live !== undefined) {
    metric("sipdir_directory_entries", "gauge", "Registrations served.", one(live.directory.size));
    metric(
      "sipdir_directory_bytes",
      "gauge",
      "Bytes of registrations and index held.",
      one(live.directory.byteLength),
    );
    metric(
      "sipdir_directory_loaded_timestamp_seconds",
      "gauge",
      "When the data served was loaded, in seconds since the epoch.",
      one(live.loadedAt / 1000),
    );
    metric(
      "sipdir_directory_age_seconds",
      "gauge",
      "Seconds since the data served was loaded.",
      one((Date.now() - live.loadedAt) / 1000),
    );
  }
  if (source.journal !== undefined) {
    const journal = source.journal;
    const changes = live?.directory.changes;
    metric(
      "sipdir_journal_applied_sequence",
      "gauge",
      "The sequence number served: the last journal line applied, or the dump's.",
      one(journal.applied),
    );
    metric(
      "sipdir_journal_lines_applied_total",
      "counter",
      "Journal lines applied (a reloaded dump gets those above its sequence number again).",
      one(counters.journalLines.applied),
    );
    metric(
      "sipdir_journal_lines_skipped_total",
      "counter",
      "Journal lines skipped: at or below the sequence number already served.",
      one(counters.journalLines.skipped),
    );
    metric(
      "sipdir_journal_errors_total",
      "counter",
      "Bad journal lines met; each stops applying until it is fixed or the journal replaced.",
      one(counters.journalErrors),
    );
    metric(
      "sipdir_journal_stopped",
      "gauge",
      "1 while applying the journal is stopped at a bad line, else 0.",
      one(journal.faulted ? 1 : 0),
    );
    metric(
      "sipdir_journal_changes",
      "gauge",
      "Registrations changed (put or deleted) since the dump served was loaded.",
      one(changes?.count ?? 0),
    );
    metric(
      "sipdir_journal_bytes",
      "gauge",
      "Bytes held by the changes since the dump was loaded; a reload gives them back.",
      one(changes?.byteLength ?? 0),
    );
    metric(
      "sipdir_journal_last_applied_timestamp_seconds",
      "gauge",
      "When the last journal line was applied, in seconds since the epoch; 0 before the first.",
      one(journal.appliedAt / 1000),
    );
    metric(
      "sipdir_journal_age_seconds",
      "gauge",
      "Seconds since the last journal line was applied (since start, before the first).",
      one((Date.now() - (journal.appliedAt || source.startedAt)) / 1000),
    );
  }
  metric(
    "process_resident_memory_bytes",
    "gauge",
    "Resident memory size in bytes.",
    one(Deno.memoryUsage().rss),
  );
  metric(
    "process_start_time_seconds",
    "gauge",
    "Start time of the process since the epoch, in seconds.",
    one(source.startedAt / 1000),
  );
  return lines.join("\n") + "\n";
}

function formatLabels(labels: Record<string, string>): string {
  const pairs = Object.entries(labels);
  if (pairs.length === 0) return "";
  const escape = (value: string) =>
    value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
  return `{${pairs.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}
