/**
 * Operational counters, kept in one object so that logs (and later a metrics
 * endpoint) read the same numbers.
 *
 * @module
 */

/** Counters of one sipdir process. All are totals since start, but `open`. */
export class Counters {
  /** Connections accepted and served. */
  accepted = 0;
  /** Connections refused because `--max-clients` were open. */
  rejected = 0;
  /** Connections open now. */
  open = 0;
  /** Connections closed for inactivity. */
  idleClosed = 0;
  /** Connections closed for a request line over `--max-line`. */
  overlongLines = 0;
  /** Connections that ended with an error (reset, broken pipe …). */
  connectionErrors = 0;
  /** Failed `accept()` calls (reset before accept, out of descriptors …). */
  acceptErrors = 0;
  /** Request lines answered. */
  lookups = 0;
  /** Lookups answered with a registration. */
  hits = 0;
  /** Lookups answered with an empty line. */
  misses = 0;
  /** Socket writes of answers: far fewer than lookups when clients pipeline. */
  writes = 0;
  /** Bytes of requests read. */
  bytesIn = 0;
  /** Bytes of answers written. */
  bytesOut = 0;
  /** Successful data reloads. */
  reloads = 0;
  /** Reloads that kept the old data because the new file was bad. */
  reloadFailures = 0;
  /** Reloads that kept the old data because the new file had too few entries. */
  reloadRefusals = 0;

  /** The counters as a plain object, e.g. for JSON. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(Object.entries(this));
  }

  /**
   * The counters as `name=value` pairs on one line.
   *
   * @example
   * ```ts
   * import { Counters } from "./counters.ts";
   * console.log(new Counters().format()); // "accepted=0 rejected=0 …"
   * ```
   */
  format(): string {
    return Object.entries(this.snapshot()).map(([k, v]) => `${k}=${v}`).join(" ");
  }
}
