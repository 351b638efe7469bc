/**
 * Generates realistic SIP registration dumps, deterministically.
 *
 * ```sh
 * deno task gen -- 1000000 out.jsonl                 # 1M registrations
 * deno task gen -- 1000 data/regs --keys keys.txt    # and the AORs, one a line
 * deno task gen -- 20000000 big.jsonl --small        # minimal records, for scale tests
 * deno task gen -- 1000 regs --sequence 500 --journal journal --changes 2000
 *                                 # a dump at sequence 500, and 2000 changes after it
 * ```
 *
 * The first record is always the example from the original dump; a small
 * share of later records repeat an earlier AOR, as real dumps do.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The example registration, first line of every generated dump. */
export const EXAMPLE_RECORD =
  '{"addressOfRecord":"0142e2fa3543cb32bf000100620002","tenantId":"0127d974-f9f3-0704-2dee-000100420001","uri":"sip:0142e2fa3543cb32bf000100620002@10.21.21.127;jbcuser=cpe70;x-ebcid=AsfApcJMpgA","contact":"<sip:0142e2fa3543cb32bf000100620002@10.21.21.127;jbcuser=cpe70;x-ebcid=AsfApcJMpgA>;methods=\\"INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, UPDATE, REFER\\"","path":["<sip:Mi0xOTkuMTkyLjE2NS4xOTQtMTk2MjI@10.119.255.103:5060;lr>"],"source":"199.192.165.194:19622","target":"162.250.60.10:5061","userAgent":"polycom.vvx.600","rawUserAgent":"PolycomVVX-VVX_600-UA/5.4.5.6770","created":"2016-12-12T22:40:40.764Z","lineId":"013db2ba-2175-6d29-6157-000100620002"}';

/** Options of {@linkcode generateRegistrations}. */
export interface GenerateOptions {
  /** Number of lines. */
  count: number;
  /** PRNG seed; the same seed gives the same dump. Default 1. */
  seed?: number;
  /** Share of lines (after the first) that repeat an earlier AOR. Default 0.01. */
  duplicates?: number;
  /** Minimal records (AOR and contact only), for scale tests. */
  small?: boolean;
}

/** One generated line and its AOR. */
export interface GeneratedLine {
  /** The AOR of this line. */
  aor: string;
  /** Compact JSON, without the line feed. */
  line: string;
  /** This AOR appeared on an earlier line. */
  duplicate: boolean;
}

const HEX = "0123456789abcdef";
const ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const B64 = ALNUM + "+/";
const METHODS =
  "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, SUBSCRIBE, NOTIFY, PRACK, UPDATE, REFER";
const PHONES = [
  ["polycom.vvx.600", "PolycomVVX-VVX_600-UA/5.4.5.6770"],
  ["polycom.vvx.500", "PolycomVVX-VVX_500-UA/5.9.2.3446"],
  ["polycom.vvx.400", "PolycomVVX-VVX_400-UA/6.1.0.6189"],
  ["polycom.soundstationip.5000", "PolycomSoundStationIP-SSIP_5000-UA/4.0.15.1009"],
  ["yealink.t46s", "Yealink SIP-T46S 66.86.0.15"],
];

/**
 * A small, fast, seedable PRNG (mulberry32): numbers in [0, 1), the same
 * sequence for the same seed.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Yields `count` registrations, the example first.
 *
 * @example
 * ```ts
 * import { generateRegistrations } from "./gen_regs.ts";
 * for (const { aor, line } of generateRegistrations({ count: 3 })) console.log(aor, line.length);
 * ```
 */
export function* generateRegistrations(options: GenerateOptions): Generator<GeneratedLine> {
  const next = seededRandom(options.seed ?? 1);
  const dupShare = options.duplicates ?? 0.01;
  const { pick, int } = draws(next);
  const aors: string[] = [];
  for (let i = 0; i < options.count; i++) {
    if (i === 0) {
      aors.push("0142e2fa3543cb32bf000100620002");
      yield { aor: aors[0], line: EXAMPLE_RECORD, duplicate: false };
      continue;
    }
    // Never the example's AOR, so that it keeps answering with the example.
    const duplicate = aors.length > 1 && next() < dupShare;
    // Seen in real dumps: 30 hex digits, or 32 mixed-case alphanumerics.
    const aor = duplicate
      ? aors[1 + int(aors.length - 1)]
      : next() < 0.8
      ? pick(HEX, 18) + String(100000000000 + int(900000000000)).slice(0, 12)
      : pick(ALNUM, 32);
    if (!duplicate) aors.push(aor);
    yield { aor, line: makeRecord(aor, next, options.small ?? false), duplicate };
  }
}

/** Random strings, integers and addresses drawn from `next`. */
function draws(next: () => number) {
  const pick = (chars: string, n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += chars[Math.floor(next() * chars.length)];
    return s;
  };
  const int = (n: number) => Math.floor(next() * n);
  const ip = () => `${1 + int(254)}.${int(256)}.${int(256)}.${1 + int(254)}`;
  return { pick, int, ip };
}

/** One registration of `aor`, compact JSON, drawn from `next`. */
function makeRecord(aor: string, next: () => number, small: boolean): string {
  const { pick, int, ip } = draws(next);
  const host = ip();
  if (small) return JSON.stringify({ addressOfRecord: aor, contact: `<sip:${aor}@${host}>` });
  const ebcid = pick(B64, 11);
  const [userAgent, rawUserAgent] = PHONES[int(PHONES.length)];
  const created = new Date(Date.UTC(2016, 0, 1) + int(365 * 86_400_000)).toISOString();
  return JSON.stringify({
    addressOfRecord: aor,
    tenantId: "0127d974-f9f3-0704-2dee-000100420001",
    uri: `sip:${aor}@${host};jbcuser=cpe70;x-ebcid=${ebcid}`,
    contact: `<sip:${aor}@${host};jbcuser=cpe70;x-ebcid=${ebcid}>;methods="${METHODS}"`,
    path: [`<sip:${pick(B64, 32)}@${ip()}:5060;lr>`],
    source: `${ip()}:${1024 + int(64000)}`,
    target: `${ip()}:5061`,
    userAgent,
    rawUserAgent,
    created,
    lineId: `${pick(HEX, 8)}-${pick(HEX, 4)}-${pick(HEX, 4)}-${pick(HEX, 4)}-${pick(HEX, 12)}`,
  });
}

/** Options of {@linkcode generateJournal}. */
export interface JournalOptions {
  /** The AORs of the dump the journal follows. */
  aors: readonly string[];
  /** Lines to write. */
  changes: number;
  /** The dump's sequence number: the journal's first line is the next. Default 0. */
  sequence?: number;
  /** PRNG seed. Default 2. */
  seed?: number;
  /** Share of lines that delete an AOR (the others register one again, or a new one). Default 0.05. */
  deletes?: number;
  /** Minimal records. */
  small?: boolean;
}

/**
 * Yields journal lines that follow a dump: an AOR of the dump registered
 * again (a new contact), now and then a new AOR, or one deleted.
 *
 * @example
 * ```ts
 * import { generateJournal } from "./gen_regs.ts";
 * const [line] = generateJournal({ aors: ["a1"], changes: 1, sequence: 7, deletes: 0 });
 * console.log(line); // {"seq":8,"put":{"addressOfRecord":"a1",…}}
 * ```
 */
export function* generateJournal(options: JournalOptions): Generator<string> {
  const next = seededRandom(options.seed ?? 2);
  const deletes = options.deletes ?? 0.05;
  let seq = options.sequence ?? 0;
  for (let i = 0; i < options.changes; i++) {
    seq++;
    const fresh = next() < 0.01 || options.aors.length === 0;
    const aor = fresh ? `new${seq}` : options.aors[Math.floor(next() * options.aors.length)];
    if (!fresh && next() < deletes) {
      yield JSON.stringify({ seq, del: aor });
    } else {
      yield `{"seq":${seq},"put":${makeRecord(aor, next, options.small ?? false)}}`;
    }
  }
}

/**
 * Writes a dump (and optionally its distinct AORs) to files; with
 * `sequence`, the dump's first line says it (`{"sequence":N}`).
 */
export async function writeRegistrations(
  options: GenerateOptions & { out: string; keys?: string; sequence?: number },
): Promise<{ lines: number; duplicates: number; aors: string[] }> {
  const encoder = new TextEncoder();
  using out = await Deno.open(options.out, { write: true, create: true, truncate: true });
  using keys = options.keys === undefined
    ? undefined
    : await Deno.open(options.keys, { write: true, create: true, truncate: true });
  let lines = 0;
  let duplicates = 0;
  let text = options.sequence === undefined ? "" : `{"sequence":${options.sequence}}\n`;
  let keyText = "";
  const aors: string[] = [];
  const flush = async () => {
    await writeAll(out, encoder.encode(text));
    if (keys) await writeAll(keys, encoder.encode(keyText));
    text = keyText = "";
  };
  for (const { aor, line, duplicate } of generateRegistrations(options)) {
    text += line + "\n";
    if (duplicate) duplicates++;
    else {
      keyText += aor + "\n";
      aors.push(aor);
    }
    if (++lines % 10_000 === 0) await flush();
  }
  await flush();
  return { lines, duplicates, aors };
}

/** Writes the journal {@linkcode generateJournal} yields to `out`. */
export async function writeJournal(options: JournalOptions & { out: string }): Promise<void> {
  const encoder = new TextEncoder();
  using out = await Deno.open(options.out, { write: true, create: true, truncate: true });
  let text = "";
  let n = 0;
  for (const line of generateJournal(options)) {
    text += line + "\n";
    if (++n % 10_000 === 0) {
      await writeAll(out, encoder.encode(text));
      text = "";
    }
  }
  await writeAll(out, encoder.encode(text));
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await file.write(bytes.subarray(done));
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      keys: { type: "string" },
      seed: { type: "string" },
      duplicates: { type: "string" },
      small: { type: "boolean" },
      sequence: { type: "string" },
      journal: { type: "string" },
      changes: { type: "string" },
    },
  });
  const count = Number(positionals[0]);
  const sequence = values.sequence === undefined ? undefined : Number(values.sequence);
  const changes = Number(values.changes ?? 0);
  if (
    positionals.length !== 2 || !Number.isInteger(count) || count < 1 ||
    (sequence !== undefined && !(Number.isSafeInteger(sequence) && sequence >= 0)) ||
    !(Number.isSafeInteger(changes) && changes >= 0)
  ) {
    console.error(
      "usage: gen_regs.ts COUNT OUT [--keys FILE] [--seed N] [--duplicates SHARE] [--small]\n" +
        "                  [--sequence N] [--journal FILE --changes N]",
    );
    Deno.exit(2);
  }
  const result = await writeRegistrations({
    count,
    out: positionals[1],
    keys: values.keys,
    seed: values.seed === undefined ? undefined : Number(values.seed),
    duplicates: values.duplicates === undefined ? undefined : Number(values.duplicates),
    small: values.small,
    sequence,
  });
  console.error(`wrote ${result.lines} registrations (${result.duplicates} duplicates)`);
  if (values.journal !== undefined) {
    await writeJournal({
      out: values.journal,
      aors: result.aors,
      changes,
      sequence: sequence ?? 0,
      small: values.small,
    });
    console.error(
      `wrote ${changes} changes to ${values.journal}, from sequence ${(sequence ?? 0) + 1}`,
    );
  }
}
