/**
 * Running a protocol on bytes, without a socket: what a connection would
 * send in, what would go out. The input is delivered in pieces cut where the
 * test says, the read buffer is compacted and the replies are collected the
 * way the transport's session does it, with the transport's own
 * {@linkcode Output}.
 *
 * @module
 */

import type { Directory } from "../lib/directory/directory.ts";
import { loadDirectory } from "../lib/loading/load.ts";
import { ProtocolCounters } from "../lib/operations/counters.ts";
import type { Protocol } from "../lib/protocol/protocol.ts";
import { Output, OutputPool } from "../lib/transport/output.ts";

/** Options of {@linkcode exchange}. */
export interface ExchangeOptions {
  /** The directory to answer from; the bundled `data/regs` by default. */
  directory?: Directory;
  /** Offsets where the input is cut into separate reads. */
  cuts?: number[];
  /**
   * Offsets after which the client pauses long enough for the protocol's
   * `pause` (they cut the input too).
   */
  pauses?: number[];
  /** The client half-closes after the input. Default true. */
  eof?: boolean;
  /** Max-pending, in bytes. Default 1 MiB. */
  maxPending?: number;
}

/** What came out of an {@linkcode exchange}. */
export interface ExchangeResult {
  /** All reply bytes, in order. */
  bytes: Uint8Array;
  /** The same, decoded as UTF-8. */
  output: string;
  /** How many socket writes the replies took. */
  writes: number;
  /** Why the protocol closed the connection, or "" if it did not. */
  closed: string;
  /** Bytes of input consumed when the exchange ended. */
  consumed: number;
  /** The protocol's counters. */
  counters: ProtocolCounters;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Feeds `input` to `protocol` as one connection would, cut into reads at
 * `options.cuts`; returns the replies.
 *
 * @example
 * ```ts
 * import { exchange } from "./protocol_harness.ts";
 * import { LineProtocol } from "../lib/protocol/line.ts";
 * import assert from "node:assert/strict";
 * const { output, writes } = await exchange(new LineProtocol(), "nobody\nnone\n", { cuts: [7] });
 * assert.deepEqual([output, writes], ["\n\n", 2]);
 * ```
 */
export async function exchange<S>(
  protocol: Protocol<S>,
  input: string | Uint8Array,
  options: ExchangeOptions = {},
): Promise<ExchangeResult> {
  const directory = options.directory ?? await bundledDirectory();
  const bytes = typeof input === "string" ? encoder.encode(input) : input;
  const counters = new ProtocolCounters(protocol.name);
  const output = new Output(
    new OutputPool(),
    counters,
    options.maxPending ?? 1024 * 1024,
    false,
    () => "127.0.0.1:40000",
  );
  const state = protocol.createState();
  const chunks: Uint8Array[] = [];
  let writes = 0;
  let consumed = 0;
  const buf = new Uint8Array(bytes.length);
  let len = 0;
  const pauses = new Set(options.pauses ?? []);
  const cuts = [...new Set([...(options.cuts ?? []), ...pauses, bytes.length])]
    .filter((c) => c >= 0 && c <= bytes.length)
    .sort((a, b) => a - b);
  const reads: { to: number; eof: boolean; pause: boolean }[] = cuts.map((to) => ({
    to,
    eof: false,
    pause: pauses.has(to),
  }));
  if (options.eof ?? true) reads.push({ to: bytes.length, eof: true, pause: false });
  let from = 0;
  for (const read of reads) {
    if (read.to < from) continue;
    buf.set(bytes.subarray(from, read.to), len);
    len += read.to - from;
    from = read.to;
    let pos = 0;
    let pausing = false;
    for (let round = 0;; round++) {
      output.directory = directory;
      if (round === 0) {
        pos = protocol.answer(state, buf, pos, len, read.eof, output);
        // After what the read completes, the pause may complete the rest.
        pausing = read.pause && pos < len && protocol.pauseAfter !== undefined &&
          protocol.pauseAfter > 0 && protocol.awaitsPause!(state);
      } else if (pausing) {
        pos = protocol.pause!(state, buf, pos, len, output);
        pausing = false;
      } else {
        pos = protocol.answer(state, buf, pos, len, read.eof, output);
      }
      const more = output.full;
      if (output.pending) {
        chunks.push(output.bytes().slice());
        writes++;
        output.reset();
      }
      if (output.closing !== "" || (!more && !pausing)) break;
    }
    consumed += pos;
    if (output.closing !== "") break;
    buf.copyWithin(0, pos, len);
    len -= pos;
  }
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return {
    bytes: all,
    output: decoder.decode(all),
    writes,
    closed: output.closing,
    consumed,
    counters,
  };
}

async function bundledDirectory(): Promise<Directory> {
  const path = new URL("../data/regs", import.meta.url).pathname;
  return (await loadDirectory({ path })).directory;
}
