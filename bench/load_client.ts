/**
 * A load client for sipdir (and, for comparison, Redis): C connections, each
 * keeping P requests in flight, for D seconds; every answer is checked.
 *
 * ```sh
 * deno run --allow-net --allow-read bench/load_client.ts \
 *   --port 1234 --keys keys.txt --connections 32 --pipeline 16 --duration 5
 * ```
 *
 * Prints `ops_per_s=… p50_us=… p99_us=… p999_us=… hits=… misses=… errors=…`
 * (or JSON with `--json`). Keys are drawn at random from the key file, plus a
 * share of AORs that do not exist (`--miss`, 0.1 by default).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Options of {@linkcode runLoad}. */
export interface LoadOptions {
  /** Server address. Default 127.0.0.1. */
  hostname?: string;
  /** Server port. */
  port: number;
  /** AORs that exist on the server. */
  keys: string[];
  /** Concurrent connections. Default 32. */
  connections?: number;
  /** Requests in flight per connection. Default 16. */
  pipeline?: number;
  /** Measured seconds, after a 0.5 s warm-up. Default 5. */
  duration?: number;
  /** Share of requests for unknown AORs. Default 0.1. */
  miss?: number;
  /** `line` for sipdir, `redis` for `GET key` against Redis. Default `line`. */
  protocol?: "line" | "redis";
}

/** What a run measured. */
export interface LoadResult {
  /** Answers per second over the measured time. */
  opsPerSecond: number;
  /** Latency percentiles in microseconds, request sent → answer read. */
  p50: number;
  p99: number;
  p999: number;
  /** Answers that were right registrations, right empty lines, or wrong. */
  hits: number;
  misses: number;
  errors: number;
}

const encoder = new TextEncoder();
const HISTOGRAM_US = 10_000_000;

/**
 * Runs one load test and resolves with its measurements.
 *
 * @example
 * ```ts ignore
 * const result = await runLoad({ port: 1234, keys: ["0142e2fa3543cb32bf000100620002"] });
 * console.log(result.opsPerSecond);
 * ```
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const connections = options.connections ?? 32;
  const pipeline = options.pipeline ?? 16;
  const protocol = options.protocol ?? "line";
  const missShare = options.miss ?? 0.1;
  const requests: { bytes: Uint8Array; key: Uint8Array; hit: boolean }[] = [];
  for (const key of options.keys) requests.push(request(key, true, protocol));
  const misses = Math.ceil((options.keys.length * missShare) / (1 - missShare));
  for (let i = 0; i < misses; i++) requests.push(request(`nosuchaor${i}x`, false, protocol));

  const histogram = new Uint32Array(HISTOGRAM_US);
  const result = { hits: 0, misses: 0, errors: 0, done: 0 };
  let measuring = false;
  let stopping = false;
  let seed = 12345;
  const pick = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return requests[(seed >>> 0) % requests.length];
  };

  const conns = await Promise.all(
    Array.from(
      { length: connections },
      () => Deno.connect({ hostname: options.hostname ?? "127.0.0.1", port: options.port }),
    ),
  );
  const run = async (conn: Deno.TcpConn) => {
    conn.setNoDelay(true);
    const sentAt: number[] = [];
    const sent: typeof requests = [];
    let buf = new Uint8Array(256 * 1024);
    let len = 0;
    const send = async (n: number) => {
      const batch: Uint8Array[] = [];
      let size = 0;
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        const r = pick();
        sent.push(r);
        sentAt.push(now);
        batch.push(r.bytes);
        size += r.bytes.length;
      }
      const out = new Uint8Array(size);
      let o = 0;
      for (const b of batch) {
        out.set(b, o);
        o += b.length;
      }
      for (let w = 0; w < out.length;) w += await conn.write(out.subarray(w));
    };
    await send(pipeline);
    while (!stopping) {
      if (len === buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = await conn.read(buf.subarray(len));
      if (n === null) throw new Error("server closed the connection");
      len += n;
      let pos = 0;
      let answered = 0;
      for (;;) {
        const end = protocol === "line" ? lineAnswer(buf, pos, len) : redisAnswer(buf, pos, len);
        if (end === null) break;
        const r = sent.shift()!;
        const t0 = sentAt.shift()!;
        const body = buf.subarray(end.bodyStart, end.bodyEnd);
        if (r.hit ? contains(body, r.key) : body.length === 0) {
          if (r.hit) result.hits++;
          else result.misses++;
        } else {
          result.errors++;
        }
        if (measuring) {
          const us = Math.min(HISTOGRAM_US - 1, Math.round((performance.now() - t0) * 1000));
          histogram[us]++;
          result.done++;
        }
        pos = end.next;
        answered++;
      }
      buf.copyWithin(0, pos, len);
      len -= pos;
      if (answered > 0 && !stopping) await send(answered);
    }
  };
  const running = conns.map(run);
  await sleep(500);
  measuring = true;
  Object.assign(result, { hits: 0, misses: 0, errors: 0, done: 0 });
  const start = performance.now();
  await sleep((options.duration ?? 5) * 1000);
  measuring = false;
  const seconds = (performance.now() - start) / 1000;
  stopping = true;
  for (const conn of conns) conn.close();
  await Promise.allSettled(running);
  return {
    opsPerSecond: Math.round(result.done / seconds),
    p50: percentile(histogram, result.done, 0.5),
    p99: percentile(histogram, result.done, 0.99),
    p999: percentile(histogram, result.done, 0.999),
    hits: result.hits,
    misses: result.misses,
    errors: result.errors,
  };
}

function request(key: string, hit: boolean, protocol: "line" | "redis") {
  const text = protocol === "line" ? `${key}\n` : `GET ${key}\r\n`;
  return { bytes: encoder.encode(text), key: encoder.encode(key), hit };
}

/** The next sipdir answer in `buf[pos, len)`: one line. */
function lineAnswer(buf: Uint8Array, pos: number, len: number) {
  const lf = buf.subarray(pos, len).indexOf(0x0a);
  if (lf < 0) return null;
  return { bodyStart: pos, bodyEnd: pos + lf, next: pos + lf + 1 };
}

/** The next Redis reply in `buf[pos, len)`: `$N\r\n<N bytes>\r\n` or `$-1\r\n`. */
function redisAnswer(buf: Uint8Array, pos: number, len: number) {
  const lf = buf.subarray(pos, len).indexOf(0x0a);
  if (lf < 0) return null;
  const header = new TextDecoder().decode(buf.subarray(pos, pos + lf - 1));
  const size = Number(header.slice(1));
  if (size < 0) return { bodyStart: pos, bodyEnd: pos, next: pos + lf + 1 };
  const bodyStart = pos + lf + 1;
  if (bodyStart + size + 2 > len) return null;
  return { bodyStart, bodyEnd: bodyStart + size, next: bodyStart + size + 2 };
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function percentile(histogram: Uint32Array, total: number, p: number): number {
  let seen = 0;
  for (let us = 0; us < histogram.length; us++) {
    seen += histogram[us];
    if (seen >= total * p) return us;
  }
  return histogram.length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Formats a result as `name=value` pairs. */
export function formatResult(r: LoadResult): string {
  return `ops_per_s=${r.opsPerSecond} p50_us=${r.p50} p99_us=${r.p99} p999_us=${r.p999} ` +
    `hits=${r.hits} misses=${r.misses} errors=${r.errors}`;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "1234" },
      keys: { type: "string" },
      connections: { type: "string", short: "c", default: "32" },
      pipeline: { type: "string", short: "P", default: "16" },
      duration: { type: "string", short: "d", default: "5" },
      miss: { type: "string", default: "0.1" },
      protocol: { type: "string", default: "line" },
      json: { type: "boolean" },
    },
  });
  if (!values.keys || (values.protocol !== "line" && values.protocol !== "redis")) {
    console.error(
      "usage: load_client.ts --keys FILE [--host H] [--port P] [-c CONNS] [-P DEPTH] [-d SECS] " +
        "[--miss SHARE] [--protocol line|redis] [--json]",
    );
    Deno.exit(2);
  }
  const keys = (await Deno.readTextFile(values.keys)).split("\n").filter((k) => k !== "");
  const result = await runLoad({
    hostname: values.host,
    port: Number(values.port),
    keys,
    connections: Number(values.connections),
    pipeline: Number(values.pipeline),
    duration: Number(values.duration),
    miss: Number(values.miss),
    protocol: values.protocol,
  });
  console.log(values.json ? JSON.stringify(result) : formatResult(result));
  Deno.exit(result.errors > 0 ? 1 : 0);
}
