/**
 * Operational counters, kept in one object so that logs and the metrics
 * endpoint read the same numbers.
 *
 * @module
 */

/** A counting field of {@linkcode ProtocolCounters}. */
export type ProtocolField =
  | "lookups"
  | "hits"
  | "misses"
  | "writes"
  | "bytesIn"
  | "bytesOut"
  | "protocolErrors";

/**
 * The counters of one wire protocol: incremented on the hot path, so plain
 * numeric fields on one object of one shape.
 */
export class ProtocolCounters {
  /** The protocol's name, e.g. "line" or "redis". */
  readonly protocol: string;
  /** Requests answered: lines, or keys of GET, MGET and EXISTS. */
  lookups = 0;
  /** Lookups answered with a registration. */
  hits = 0;
  /** Lookups of unknown AORs. */
  misses = 0;
  /** Socket writes of replies: far fewer than lookups when clients pipeline. */
  writes = 0;
  /** Bytes of requests read. */
  bytesIn = 0;
  /** Bytes of replies written. */
  bytesOut = 0;
  /** Connections closed for bad input: lines over max-line, malformed commands. */
  protocolErrors = 0;

  /**
   * Creates zeroed counters.
   * @param protocol the protocol's name
   */
  constructor(protocol: string) {
    this.protocol = protocol;
  }
}

/** The fields of {@linkcode ProtocolCounters} that count, in the order they are logged. */
export const PROTOCOL_FIELDS: readonly ProtocolField[] = [
  "lookups",
  "hits",
  "misses",
  "writes",
  "bytesIn",
  "bytesOut",
  "protocolErrors",
];

/**
 * Counters of one sipdir process. All are totals since start, but `open`.
 * Per-protocol counts live in {@linkcode Counters.protocol}; the totals keep
 * the names they had before there was more than one protocol.
 *
 * @example
 * ```ts
 * import { Counters } from "./counters.ts";
 * import assert from "node:assert/strict";
 * const counters = new Counters();
 * counters.protocol("line").lookups += 2;
 * counters.protocol("redis").lookups += 3;
 * assert.deepEqual(counters.lookups, 5);
 * assert.deepEqual(counters.format().startsWith("accepted=0 rejected=0 open=0"), true);
 * ```
 */
export class Counters {
  /** Connections accepted and served. */
  accepted = 0;
  /** Connections refused because `--max-clients` were open. */
  rejected = 0;
  /** Connections open now. */
  open = 0;
  /** Connections closed for inactivity. */
  idleClosed = 0;
  /** Connections that ended with an error (reset, broken pipe …). */
  connectionErrors = 0;
  /** Failed `accept()` calls (reset before accept, out of descriptors …). */
  acceptErrors = 0;
  /** Connections closed by a fault in sipdir's handling of them (a bug, logged with its stack). */
  connectionFaults = 0;
  /** Connections to the Redis port refused by protected mode (not from loopback, no password). */
  denied = 0;
  /** Connections closed because all clients together held over `--max-client-memory`. */
  evicted = 0;
  /** Successful data reloads. */
  reloads = 0;
  /** Reloads that kept the old data because the new file was bad. */
  reloadFailures = 0;
  /** Reloads that kept the old data because the new file had too few entries. */
  reloadRefusals = 0;
  /**
   * Journal lines applied (again, for a reloaded dump, those above its
   * sequence number), and skipped: at or below the sequence number already
   * served. The journal's reader counts into it as it reads.
   */
  readonly journalLines = { applied: 0, skipped: 0 };
  /** Bad journal lines met (each stops applying until fixed). */
  journalErrors = 0;
  readonly #protocols = new Map<string, ProtocolCounters>();

  /** The counters of `name`, created at first use. */
  protocol(name: string): ProtocolCounters {
    let counters = this.#protocols.get(name);
    if (counters === undefined) {
      counters = new ProtocolCounters(name);
      this.#protocols.set(name, counters);
    }
    return counters;
  }

  /** The per-protocol counters, in the order the protocols were first used. */
  protocols(): ProtocolCounters[] {
    return [...this.#protocols.values()];
  }

  /** Connections closed for a request line over `--max-line` (the line protocol's errors). */
  get overlongLines(): number {
    return this.#protocols.get("line")?.protocolErrors ?? 0;
  }

  /** Requests answered, all protocols. */
  get lookups(): number {
    return this.#sum("lookups");
  }

  /** Lookups answered with a registration, all protocols. */
  get hits(): number {
    return this.#sum("hits");
  }

  /** Lookups of unknown AORs, all protocols. */
  get misses(): number {
    return this.#sum("misses");
  }

  /** Socket writes of replies, all protocols. */
  get writes(): number {
    return this.#sum("writes");
  }

  /** Bytes of requests read, all protocols. */
  get bytesIn(): number {
    return this.#sum("bytesIn");
  }

  /** Bytes of replies written, all protocols. */
  get bytesOut(): number {
    return this.#sum("bytesOut");
  }

  /**
   * The counters as a plain object: today's totals, then each protocol's
   * counts as `protocol.name` when more than one protocol is served.
   */
  snapshot(): Record<string, number> {
    const totals: Record<string, number> = {
      accepted: this.accepted,
      rejected: this.rejected,
      open: this.open,
      idleClosed: this.idleClosed,
      overlongLines: this.overlongLines,
      connectionErrors: this.connectionErrors,
      acceptErrors: this.acceptErrors,
      connectionFaults: this.connectionFaults,
      denied: this.denied,
      evicted: this.evicted,
      lookups: this.lookups,
      hits: this.hits,
      misses: this.misses,
      writes: this.writes,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      reloads: this.reloads,
      reloadFailures: this.reloadFailures,
      reloadRefusals: this.reloadRefusals,
      journalApplied: this.journalLines.applied,
      journalSkipped: this.journalLines.skipped,
      journalErrors: this.journalErrors,
    };
    if (this.#protocols.size > 1) {
      for (const counters of this.#protocols.values()) {
        for (const field of PROTOCOL_FIELDS) {
          totals[`${counters.protocol}.${field}`] = counters[field];
        }
      }
    }
    return totals;
  }

  /** The counters as `name=value` pairs on one line. */
  format(): string {
    return Object.entries(this.snapshot()).map(([k, v]) => `${k}=${v}`).join(" ");
  }

  #sum(field: ProtocolField): number {
    let total = 0;
    for (const counters of this.#protocols.values()) total += counters[field];
    return total;
  }
}
