/**
 * A differential fuzz of sipdir's Redis port against a real Redis: random
 * streams of commands, sent to both, their replies compared byte for byte.
 *
 * Both servers hold the same data: 300 generated registrations and a few
 * with awkward AORs (spaces, quotes, non-ASCII text, `%`, control
 * characters, a NUL). sipdir (a process: `--redis-port 0`, and `--max-line
 * 4096` so that long arguments are accepted) loads them from a dump;
 * `redis-server` (Debian's 7.0.15, on loopback, on a free port, with
 * `--databases 1` since sipdir has one database, its log in the test's
 * temporary directory) gets `SET aor line`, the line being the dump's line
 * without its newline. Redis is then made a read-only replica of a port
 * nothing listens on (`REPLICAOF`): it keeps its data while it cannot reach
 * its master, serves it (replica-serve-stale-data is on by default) and
 * refuses writes with `READONLY`, as sipdir does. Both are checked to
 * answer alike before, and Redis to still hold its data after.
 *
 * A seeded generator (the seed is `FUZZ_SEED`, or random; it is printed at
 * the start and in every failure) makes streams of frames for one
 * connection, 1 to 60 of them (a pipeline), or a flood of 50 to 300 GETs:
 * - GET (hits, misses, near misses in another case, empty and binary
 *   keys), MGET of 1 to 50 keys, EXISTS, PING [message], ECHO, SELECT (0,
 *   1, and integers and non-integers of every shape and size), DBSIZE,
 *   QUIT (last, or followed by frames both must ignore);
 * - MULTI blocks: commands queued, refused (EXEC then aborts), nested
 *   MULTI, EXEC or DISCARD or neither at the end, and EXEC, DISCARD and
 *   MULTI alone or with an argument too many;
 * - writes (sipdir's list of them, with Redis 7.0's arities, and wrong
 *   ones), refused with READONLY, inside MULTI too;
 * - unknown commands with random arguments: CR, LF, NUL and bytes over 0x7f
 *   in names and arguments, names and arguments long enough to be cut at
 *   128 bytes, known names with look-alike letters (U+212A KELVIN SIGN
 *   lowercases to an ASCII k);
 * - CONFIG GET of one existing name (save, appendonly, databases, in any
 *   case, maybe named twice, among names that do not exist), CONFIG GET
 *   without a name, CONFIG and CLIENT with unknown subcommands, CLIENT
 *   SETNAME (valid, invalid, empty) and GETNAME, wrong arities of all;
 * - AUTH (no password on either: its refusals, and `AUTH default x`, are
 *   comparable); HELLO that fails (protocol versions both refuse, options
 *   one of which is refused); and, as a stream's first command only, HELLO
 *   that succeeds (2 or 3, maybe with SETNAME and AUTH): its reply is
 *   compared by its first line only (see below), and the rest of the stream
 *   then runs in RESP3 mostly;
 * - encodings: RESP multibulk mostly, inline sometimes (plain, double-quoted
 *   with every escape, single-quoted, odd white space between arguments and
 *   around, `\n` or `\r\n` ends), multibulk with the slack Redis allows (any
 *   byte after a count's or a length's CR, any two bytes after an argument);
 * - inline lines that only inline parsing sees: empty ones, odd escapes,
 *   quotes in the middle of words, unbalanced quotes, a closing quote
 *   followed by a letter, and the GETs sipdir's inline shortcut must leave
 *   to the general parser;
 * - malformed frames: bad `*` and `$` lines (signs, leading zeros,
 *   non-digits, huge numbers, negative counts of every length), `*0`,
 *   `*-1`, a wrong type byte where a `$` line belongs, a NUL before a
 *   line's CR (where Redis's `strchr` stops, so the line never ends), counts
 *   above and below the arguments that follow, a length short of its bytes,
 *   an HTTP request (POST, Host:) that both close on without a reply; and,
 *   as a stream's last frame only, a command cut short, a length longer than
 *   what follows, garbage without a line end.
 *
 * Each stream goes to both servers at once, over fresh connections, written
 * in pieces cut at random offsets (a byte at a time sometimes) with no
 * pause, a macrotask or a millisecond or two between them; then the write
 * side is shut, and the replies are read until the server closes (10 s at
 * most: a server that does not close differs from one that does). The
 * replies must be equal, byte for byte. On a difference, the stream is
 * shrunk (frames dropped, then runs of bytes, while the servers still
 * differ in the same way, sent in one write) and the test fails with the
 * seed, the stream and the shrunk one (escaped as C strings), both servers'
 * replies to each, and the first offset where they differ. `FUZZ_SECONDS`
 * (default 20) bounds the run; `FUZZ_ALL=1` goes on after a difference and
 * reports each kind of difference (what each server answered where they
 * first differ) once, up to 30.
 *
 * Not generated, because the servers differ by design, or because Redis's
 * own answer is not reproducible:
 * - INFO, CLIENT ID, COMMAND, CLUSTER, and HELLO's reply when it succeeds:
 *   sipdir reports itself, not Redis (its name, version, role, ids), and
 *   has no command table to publish or cluster to describe.
 * - Commands Redis has and sipdir does not (DEBUG, KEYS, WATCH, the writes
 *   sipdir does not list …): unknown names are drawn until neither server
 *   knows them, Redis's names from its own `COMMAND LIST`. CLIENT SETINFO
 *   (Redis 7.2's, which sipdir accepts for newer clients and 7.0 does not
 *   know) and the other subcommands of CONFIG and CLIENT (SET, REWRITE,
 *   LIST, KILL …): sipdir has none of them.
 * - Names with a NUL after a command's, subcommand's or HELLO option's name
 *   (`GET\0x`): Redis looks names up in hash tables seeded at random at each
 *   start, and compares them with `strcasecmp`, which stops at the NUL, so
 *   `GET\0x` is GET whenever it lands in GET's bucket (HELLO's options are
 *   compared with `strcasecmp` alone, which is reproducible, and kept).
 * - CONFIG GET with patterns, or with several existing names: Redis knows
 *   hundreds of parameters and replies in its dictionary's order.
 * - Arguments over --max-line, `$` lengths from there to 512 MB, `*` counts
 *   from 1 048 576 to 2^31 - 1: sipdir bounds what it holds (`-ERR Protocol
 *   error: invalid bulk length` / `invalid multibulk length`) where Redis
 *   waits for the bytes. Lines near 64 KiB: whether Redis refuses a long
 *   line depends on how much of it one read brought.
 * - MGET cut short (by the stream's end, or by a malformed frame inside
 *   it): sipdir answers MGET key by key as its arguments arrive, so what it
 *   sent before the end or the protocol error is out, where Redis sends
 *   nothing of a command it never completed.
 * - An HTTP request (POST, Host:) after other commands: Redis frees the
 *   client at once (CLIENT_CLOSE_ASAP) and drops the replies it has not
 *   written yet, which depends on how the stream was cut into reads.
 * - Streams whose replies would pass about 40 KB: Redis writes at most
 *   64 KiB to a client per pass of its event loop, and frees a client whose
 *   end of stream it reads with what it has not written yet.
 *
 * Run it with `deno test --allow-all tests/integration/redis_fuzz_test.ts`.
 * Fails (does not skip) when redis-server is missing (Debian: redis-server).
 */

import { COMMANDS } from "../../lib/protocol/redis/commands.ts";
import { generateRegistrations, seededRandom } from "../../testing/gen_regs.ts";
import { SipdirProcess } from "../../testing/sipdir_process.ts";
// `chars`: bytes as a string of one char a byte; `latin1` below goes the other way.
import { concat, latin1 as chars } from "../../testing/bytes.ts";

type Bytes = Uint8Array;

const encoder = new TextEncoder();

/** The run's seed: `FUZZ_SEED`, or a random one. */
const SEED = seedFromEnv();
/** How long the streams run, in seconds: `FUZZ_SECONDS`. */
const SECONDS = Number(Deno.env.get("FUZZ_SECONDS") || "20");
/** `FUZZ_ALL=1`: go on after a difference, and report every distinct one. */
const ALL = Deno.env.get("FUZZ_ALL") === "1";
/** sipdir's `--max-line`: its longest argument. */
const MAX_LINE = 4096;
/** Redis's `proto-max-bulk-len`. */
const MAX_BULK = 512 * 1024 * 1024;
/** sipdir's most arguments in one command (`--redis-max-args`). */
const MAX_ARGS = 1024 * 1024;
const INT_MAX = 2 ** 31 - 1;
/** What a stream's replies are kept under (see the module doc). */
const REPLY_BUDGET = 40_000;
/** How long a server may take to close after the stream's end. */
const CLOSE_TIMEOUT = 10_000;
/** How long shrinking a stream that shows a difference may take, in ms. */
const SHRINK_TIME = 20_000;
/** How many distinct differences `FUZZ_ALL` reports at most. */
const MAX_REPORTED = 30;

const CR = 0x0d;
const LF = 0x0a;
const NUL = 0x00;

function seedFromEnv(): number {
  const given = Deno.env.get("FUZZ_SEED");
  if (given === undefined || given === "") return crypto.getRandomValues(new Uint32Array(1))[0];
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`FUZZ_SEED must be an integer from 0 to 2^32 - 1, not ${given}`);
  }
  return seed;
}

// ---------------------------------------------------------------------------
// Bytes

/** A string of char codes below 256 as bytes, one a char. */
function latin1(text: string): Bytes {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new Error(`not a byte: ${text}`);
    bytes[i] = c;
  }
  return bytes;
}

function equalBytes(a: Bytes, b: Bytes): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Bytes as a double-quoted C (and JS, and `printf '%b'`) string: reproducible by copying. */
function escape(bytes: Bytes): string {
  let text = "";
  for (const b of bytes) {
    if (b === 0x5c) text += "\\\\";
    else if (b === 0x22) text += '\\"';
    else if (b === CR) text += "\\r";
    else if (b === LF) text += "\\n";
    else if (b === 0x09) text += "\\t";
    else if (b >= 0x20 && b < 0x7f) text += String.fromCharCode(b);
    else text += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return `"${text}"`;
}

/** A command as RESP: `*n` and each argument as `$len` and its bytes. */
function multibulk(args: readonly Bytes[]): Bytes {
  const parts: Bytes[] = [latin1(`*${args.length}\r\n`)];
  for (const arg of args) parts.push(latin1(`$${arg.length}\r\n`), arg, latin1("\r\n"));
  return concat(parts);
}

/**
 * Where the RESP2 or RESP3 reply at `pos` ends; -1 while `buf[pos, len)`
 * does not hold all of it, or -2 if it is not a reply.
 */
function replyEnd(buf: Bytes, pos: number, len: number): number {
  let cr = pos;
  while (cr + 1 < len && !(buf[cr] === CR && buf[cr + 1] === LF)) cr++;
  if (cr + 1 >= len) return -1;
  const n = Number(chars(buf.subarray(pos + 1, cr)));
  const next = cr + 2;
  const elements = (count: number) => {
    let at = next;
    for (let i = 0; i < count && at >= 0; i++) at = replyEnd(buf, at, len);
    return at;
  };
  switch (String.fromCharCode(buf[pos])) {
    case "+":
    case "-":
    case ":":
    case "_":
    case "#":
    case ",":
    case "(":
      return next;
    case "$":
    case "=":
    case "!":
      if (n < 0) return next;
      return next + n + 2 <= len ? next + n + 2 : -1;
    case "*":
    case "~":
    case ">":
      return n < 0 ? next : elements(n);
    case "%":
      return elements(2 * n);
  }
  return -2;
}

/** The bulk strings of a RESP array reply. */
function bulkStrings(reply: Bytes): Bytes[] {
  const strings: Bytes[] = [];
  let at = reply.indexOf(LF) + 1;
  while (at < reply.length) {
    const lf = reply.indexOf(LF, at);
    const n = Number(chars(reply.subarray(at + 1, lf - 1)));
    strings.push(reply.subarray(lf + 1, lf + 1 + n));
    at = lf + 1 + n + 2;
  }
  return strings;
}

// ---------------------------------------------------------------------------
// Seeded choices

class Random {
  readonly #next: () => number;

  constructor(seed: number) {
    this.#next = seededRandom(seed);
  }

  float(): number {
    return this.#next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** An integer in [low, high]. */
  between(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  /** Small more often than large: an integer in [0, n), skewed towards 0. */
  small(n: number): number {
    return Math.floor(this.#next() ** 2 * n);
  }

  chance(p: number): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let total = 0;
    for (const [weight] of choices) total += weight;
    let x = this.#next() * total;
    for (const [weight, value] of choices) {
      x -= weight;
      if (x < 0) return value;
    }
    return choices[choices.length - 1][1];
  }
}

// ---------------------------------------------------------------------------
// The data both servers hold

/** AORs that a key's bytes must survive: spaces, quotes, `%`, non-ASCII, controls. */
const SPECIAL_AORS = [
  "alice smith@example.com",
  'say "hi"@example.com',
  "it's@example.com",
  "a'b\"c d",
  "zoë-ñandú@例え.jp",
  "100%@example.com",
  "%s%n%x%%@example.com",
  "back\\slash@example.com",
  "tab\tinside@example.com",
  "ctl\u0001\u001f\u007f@example.com",
  "nul\u0000inside@example.com",
  "\u212Aelvin@example.com",
  "MixedCase@Example.COM",
  "GET",
  "*2",
  "$3",
  "x",
];

interface Registration {
  /** The AOR, as a key. */
  key: Bytes;
  /** The dump line without its newline: GET's answer. */
  line: string;
}

function registrations(): Registration[] {
  const all: Registration[] = [];
  for (const { aor, line } of generateRegistrations({ count: 300, seed: 17, duplicates: 0 })) {
    all.push({ key: encoder.encode(aor), line });
  }
  SPECIAL_AORS.forEach((aor, i) => {
    const line = JSON.stringify({
      addressOfRecord: aor,
      contact: `<sip:special${i}@10.0.0.${i + 1}>`,
      note: 'Zoë Ñandú ☎ 100% "quoted"',
    });
    all.push({ key: encoder.encode(aor), line });
  });
  return all;
}

// ---------------------------------------------------------------------------
// The generator

/** What the generator draws from. */
interface Universe {
  /** The generated registrations. */
  plain: Registration[];
  /** Those with awkward AORs. */
  special: Registration[];
  /** Names (lower case) that Redis or sipdir know as commands: never drawn as unknown. */
  known: Set<string>;
  /** sipdir's writes, with their arities. */
  writes: [string, number][];
}

/** Subcommands Redis 7.0 has: never drawn as unknown ones. */
const CONFIG_SUBCOMMANDS = new Set(["get", "set", "resetstat", "rewrite", "help"]);
const CLIENT_SUBCOMMANDS = new Set([
  "caching",
  "getname",
  "getredir",
  "help",
  "id",
  "info",
  "kill",
  "list",
  "no-evict",
  "no-touch",
  "pause",
  "reply",
  "setinfo",
  "setname",
  "tracking",
  "trackinginfo",
  "unblock",
  "unpause",
]);

/** Bytes that white space, quotes or a line end would change in an inline argument. */
const INLINE_SPECIAL = new Set([0x20, 0x09, CR, LF, NUL, 0x22, 0x27, 0x0b, 0x0c]);

/** Look-alikes of ASCII letters; U+212A (Kelvin) lowercases to an ASCII `k`. */
const LOOKALIKES: Record<string, string[]> = {
  k: ["\u212A"],
  s: ["\u017F"],
  i: ["\u0130", "\u0131"],
  a: ["\u0430"],
  e: ["\u0435"],
  o: ["\u043E"],
};

const SELECT_INDEXES = [
  "0",
  "1",
  "-1",
  "2",
  "16",
  "00",
  "-0",
  "+1",
  " 1",
  "1 ",
  "",
  "x",
  "0x1",
  "1e3",
  "1.0",
  "2147483647",
  "2147483648",
  "-2147483648",
  "-2147483649",
  "4294967296",
  "999999999999999999",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775808",
  "-9223372036854775809",
  "99999999999999999999",
  "١",
];

const HELLO_VERSIONS = [
  "x",
  "4",
  "1",
  "0",
  "-2",
  "03",
  "02",
  "",
  "2x",
  "3.0",
  " 3",
  "-1",
  "4294967298",
];

/** A stream: its frames; with `hello`, the first is a HELLO that succeeds. */
interface Stream {
  frames: Bytes[];
  hello: boolean;
}

/** Makes the streams: frames (each a command, or a malformed piece) and how to cut them. */
class Generator {
  readonly #r: Random;
  readonly #u: Universe;
  /** Reply bytes the stream may still cause. */
  #budget = 0;

  constructor(random: Random, universe: Universe) {
    this.#r = random;
    this.#u = universe;
  }

  /** A stream's frames; with `hello`, the first is a HELLO that succeeds (see `withoutHello`). */
  stream(): Stream {
    const r = this.#r;
    this.#budget = REPLY_BUDGET;
    const frames: Bytes[] = [];
    const hello = r.chance(0.1);
    if (hello) frames.push(this.#helloFrame());
    else if (r.chance(0.02)) frames.push(this.#crossProtocol());
    if (r.chance(0.04)) return { frames: [...frames, ...this.#getFlood()], hello };
    const n = 1 + r.small(60);
    while (frames.length < n && this.#budget > 0) {
      r.weighted<() => void>([
        [70, () => frames.push(this.#encode(this.#command()))],
        [8, () => frames.push(...this.#transaction())],
        [4, () => frames.push(...this.#multiOrExec())],
        [6, () => frames.push(this.#inlineOddity())],
        [8, () => frames.push(this.#malformed())],
        [2, () => frames.push(this.#quit())],
      ])();
    }
    if (r.chance(0.1)) frames.push(this.#lastFrame());
    return { frames, hello };
  }

  /** Where a stream of `length` bytes is cut into writes, and the pause after each cut (-1: none, 0: a macrotask, else ms). */
  plan(length: number): Plan {
    const r = this.#r;
    if (length <= 400 && r.chance(0.03)) {
      // A byte a time.
      const cuts = Array.from({ length: length - 1 }, (_, i) => i + 1);
      return { cuts, pauses: cuts.map(() => (r.chance(0.8) ? -1 : 0)) };
    }
    const pieces = length < 2 ? 1 : r.weighted([[4, 1], [3, 2], [2, 3], [1, r.between(4, 12)]]);
    const cuts = new Set<number>();
    for (let i = 1; i < pieces; i++) cuts.add(r.between(1, length - 1));
    const sorted = [...cuts].sort((a, b) => a - b);
    return {
      cuts: sorted,
      pauses: sorted.map(() => r.weighted([[5, -1], [3, 0], [2, r.between(1, 2)]])),
    };
  }

  // Commands, as arguments.

  #command(): Bytes[] {
    const r = this.#r;
    this.#budget -= 100;
    return r.weighted<() => Bytes[]>([
      [18, () => this.#get()],
      [8, () => this.#mget()],
      [6, () => this.#exists()],
      [5, () => this.#ping()],
      [4, () => this.#echo()],
      [4, () => this.#select()],
      [2, () => this.#dbsize()],
      [6, () => this.#config()],
      [5, () => this.#client()],
      [2, () => this.#auth()],
      [1, () => this.#hello()],
      [9, () => this.#write()],
      [12, () => this.#unknown()],
    ])();
  }

  #get(): Bytes[] {
    const r = this.#r;
    const name = this.#name("get");
    return r.weighted<() => Bytes[]>([
      [20, () => [name, this.#key()]],
      [1, () => [name]],
      [1, () => [name, this.#key(), this.#key()]],
    ])();
  }

  #mget(): Bytes[] {
    const r = this.#r;
    const n = r.chance(0.04) ? 0 : 1 + r.small(50);
    const args = [this.#name("mget")];
    for (let i = 0; i < n; i++) args.push(this.#key());
    this.#budget -= 8 * n;
    return args;
  }

  #exists(): Bytes[] {
    const r = this.#r;
    const n = r.chance(0.05) ? 0 : 1 + r.small(10);
    const args = [this.#name("exists")];
    for (let i = 0; i < n; i++) args.push(this.#key(false));
    return args;
  }

  #ping(): Bytes[] {
    const r = this.#r;
    const name = this.#name("ping");
    return r.weighted<() => Bytes[]>([
      [3, () => [name]],
      [3, () => [name, this.#message()]],
      [1, () => [name, this.#message(), this.#message()]],
    ])();
  }

  #echo(): Bytes[] {
    const r = this.#r;
    const name = this.#name("echo");
    return r.weighted<() => Bytes[]>([
      [6, () => [name, this.#message()]],
      [1, () => [name]],
      [1, () => [name, this.#message(), this.#message()]],
    ])();
  }

  #select(): Bytes[] {
    const r = this.#r;
    const name = this.#name("select");
    const index = (): Bytes =>
      r.weighted<() => Bytes>([
        [6, () => encoder.encode(r.pick(SELECT_INDEXES))],
        [3, () => latin1((r.chance(0.3) ? "-" : "") + this.#digits(r.between(1, 21)))],
        [1, () => this.#hostile(0, 8)],
      ])();
    return r.weighted<() => Bytes[]>([
      [10, () => [name, index()]],
      [1, () => [name]],
      [1, () => [name, index(), index()]],
    ])();
  }

  #dbsize(): Bytes[] {
    const name = this.#name("dbsize");
    return this.#r.chance(0.8) ? [name] : [name, this.#hostile(0, 5)];
  }

  #config(): Bytes[] {
    const r = this.#r;
    const config = this.#name("config");
    const get = this.#name("get");
    const real = () => this.#mixCase(r.pick(["save", "appendonly", "databases"]));
    return r.weighted<() => Bytes[]>([
      [10, () => [config, get, real()]],
      [3, () => {
        // One existing parameter (maybe named twice) among names that do not exist.
        const name = real();
        const args = [config, get, name];
        for (let i = r.between(1, 3); i > 0; i--) {
          args.push(r.chance(0.3) ? this.#mixCase(chars(name).toLowerCase()) : this.#noSuchName());
        }
        return shuffle(r, args, 2);
      }],
      [3, () => [config, get, this.#noSuchName()]],
      [1, () => [config, get]],
      [1, () => [config]],
      [3, () => [config, this.#subcommand(CONFIG_SUBCOMMANDS), ...this.#junkArgs(2)]],
    ])();
  }

  #client(): Bytes[] {
    const r = this.#r;
    const client = this.#name("client");
    const setname = this.#name("setname");
    const getname = this.#name("getname");
    return r.weighted<() => Bytes[]>([
      [5, () => [client, setname, this.#bytes(r.between(1, 20), 0x21, 0x7e)]],
      [3, () => [client, setname, this.#hostile(0, 12)]],
      [1, () => [client, setname, new Uint8Array(0)]],
      [6, () => [client, getname]],
      [1, () => [client, getname, this.#hostile(0, 5)]],
      [1, () => [client, setname]],
      [1, () => [client, setname, this.#hostile(0, 5), this.#hostile(0, 5)]],
      [1, () => [client]],
      [3, () => [client, this.#subcommand(CLIENT_SUBCOMMANDS), ...this.#junkArgs(2)]],
    ])();
  }

  #auth(): Bytes[] {
    const r = this.#r;
    const auth = this.#name("auth");
    const password = () => this.#hostile(0, 12);
    return r.weighted<() => Bytes[]>([
      [3, () => [auth, password()]],
      [2, () => [auth, latin1("default"), password()]],
      [1, () => [auth, this.#mixCase("default"), password()]],
      [2, () => [auth, this.#hostile(0, 10), password()]],
      [1, () => [auth, password(), password(), password()]],
      [1, () => [auth]],
    ])();
  }

  /** HELLO that fails: a protocol version both refuse, or options one of which is refused. */
  #hello(): Bytes[] {
    const r = this.#r;
    if (r.chance(0.5)) return this.#helloOptions();
    const version = r.weighted<() => Bytes>([
      [6, () => latin1(r.pick(HELLO_VERSIONS))],
      [3, () => latin1((r.chance(0.3) ? "-" : "") + this.#digits(r.between(1, 21)))],
      [1, () => this.#hostile(0, 6)],
    ])();
    if (/^[23]$/.test(chars(version))) return [this.#name("hello"), latin1("4")];
    return [this.#name("hello"), version, ...this.#junkArgs(3)];
  }

  #write(): Bytes[] {
    const r = this.#r;
    const [name, arity] = r.pick(this.#u.writes);
    const least = Math.abs(arity);
    const argc = r.weighted([
      [8, arity >= 0 ? least : least + r.small(4)],
      [1, least - 1],
      [1, arity >= 0 ? least + 1 : least - 1],
      [1, r.between(1, 6)],
    ]);
    const args = [this.#name(name)];
    for (let i = 1; i < Math.max(1, argc); i++) {
      args.push(r.chance(0.5) ? this.#key(false) : this.#hostile(0, 12));
    }
    return args;
  }

  #unknown(): Bytes[] {
    this.#budget -= 300;
    return [this.#unknownName(), ...this.#junkArgs(8)];
  }

  /**
   * HELLO 2 or 3 with options, one of them refused at least: an unknown
   * option, a missing argument, a user that does not exist, a name with a
   * space; or AUTH and SETNAME followed by a NUL and more.
   */
  #helloOptions(): Bytes[] {
    const r = this.#r;
    const invalidName = () =>
      concat([this.#hostile(0, 4), latin1(r.pick([" ", "\n", "\x7f", "\xe9"]))]);
    const passing = (): Bytes[] =>
      r.chance(0.5)
        ? [this.#name("auth"), latin1("default"), this.#hostile(0, 8)]
        : [this.#name("setname"), this.#bytes(r.between(1, 12), 0x21, 0x7e)];
    const withNul = (name: string) => concat([this.#name(name), latin1("\0"), this.#hostile(0, 4)]);
    const failing = (): Bytes[] =>
      r.weighted<() => Bytes[]>([
        [2, () => [this.#name("auth"), latin1(`nouser-${r.int(100)}`), this.#hostile(0, 8)]],
        [2, () => [this.#name("setname"), invalidName()]],
        [2, () => {
          for (;;) {
            const option = r.chance(0.5)
              ? this.#mixCase(chars(this.#bytes(r.between(1, 8), 0x61, 0x7a)))
              : this.#hostile(0, 10);
            if (!["auth", "setname"].includes(nameKey(option))) return [option];
          }
        }],
        [1, () => [withNul("auth"), latin1("nouser"), this.#hostile(0, 8)]],
        [1, () => [withNul("setname"), invalidName()]],
      ])();
    const options: Bytes[][] = [];
    for (let i = r.small(3); i > 0; i--) options.push(passing());
    for (let i = r.between(1, 2); i > 0; i--) {
      options.splice(r.int(options.length + 1), 0, failing());
    }
    if (r.chance(0.2)) {
      // Too few arguments left for an option: refused.
      options.push(
        r.pick([[this.#name("auth")], [this.#name("auth"), latin1("x")], [this.#name("setname")]]),
      );
    }
    return [this.#name("hello"), latin1(r.pick(["2", "3"])), ...options.flat()];
  }

  /** A HELLO that succeeds: to RESP3 mostly, maybe with SETNAME and AUTH. */
  #helloFrame(): Bytes {
    const r = this.#r;
    const args = [this.#name("hello"), latin1(r.chance(0.8) ? "3" : "2")];
    const options: Bytes[][] = [];
    if (r.chance(0.3)) {
      options.push([this.#name("setname"), this.#bytes(r.between(1, 12), 0x21, 0x7e)]);
    }
    if (r.chance(0.2)) options.push([this.#name("auth"), latin1("default"), this.#hostile(0, 8)]);
    if (r.chance(0.5)) options.reverse();
    return this.#encode([...args, ...options.flat()]);
  }

  /** MULTI, commands (some refused), and EXEC, DISCARD or neither. */
  #transaction(): Bytes[] {
    const r = this.#r;
    const frames = [this.#encode([this.#name("multi")])];
    for (let i = r.small(8); i > 0; i--) {
      frames.push(
        r.weighted<() => Bytes>([
          [20, () => this.#encode(this.#command())],
          [1, () => this.#encode([this.#name("multi")])],
          [1, () => this.#inlineOddity()],
          [1, () => this.#quit()],
        ])(),
      );
    }
    const end = r.weighted<() => Bytes[] | null>([
      [12, () => [this.#name("exec")]],
      [5, () => [this.#name("discard")]],
      [1, () => [this.#name("exec"), this.#hostile(0, 4)]],
      [1, () => [this.#name("discard"), this.#hostile(0, 4)]],
      [3, () => null],
    ])();
    if (end !== null) frames.push(this.#encode(end));
    return frames;
  }

  /** MULTI, EXEC or DISCARD alone, maybe with an argument too many. */
  #multiOrExec(): Bytes[] {
    const r = this.#r;
    const args = [this.#name(r.pick(["multi", "exec", "discard"]))];
    if (r.chance(0.15)) args.push(this.#hostile(0, 4));
    return [this.#encode(args)];
  }

  #quit(): Bytes {
    const r = this.#r;
    const args = [this.#name("quit")];
    for (let i = r.small(3); i > 0; i--) args.push(this.#hostile(0, 6));
    return this.#encode(args);
  }

  /** POST or Host:, which both close on at once: only ever a stream's first frame. */
  #crossProtocol(): Bytes {
    const r = this.#r;
    return r.weighted<() => Bytes>([
      [1, () => latin1("POST / HTTP/1.1\r\nHost: localhost\r\n\r\n")],
      [1, () => latin1(`${chars(this.#mixCase("host"))}: localhost\r\n`)],
      [1, () => multibulk([this.#mixCase("post"), ...this.#junkArgs(2)])],
      [1, () => multibulk([latin1(`${chars(this.#mixCase("host"))}:`), ...this.#junkArgs(2)])],
    ])();
  }

  // Encodings.

  /** A command as multibulk mostly, inline sometimes, now and then with the slack Redis allows. */
  #encode(args: Bytes[]): Bytes {
    const r = this.#r;
    const x = r.float();
    if (x < 0.15) return this.#inline(args);
    if (x < 0.2) return this.#sloppy(args);
    return multibulk(args);
  }

  /**
   * Multibulk where Redis skips bytes it does not check: the byte after a
   * count's or a length's CR, the two after an argument.
   */
  #sloppy(args: Bytes[]): Bytes {
    const r = this.#r;
    const any = () => latin1(String.fromCharCode(r.int(256)));
    const end = () => (r.chance(0.5) ? latin1("\r\n") : concat([any(), any()]));
    const parts: Bytes[] = [latin1(`*${args.length}\r`), r.chance(0.5) ? latin1("\n") : any()];
    for (const arg of args) {
      parts.push(latin1(`$${arg.length}\r`), r.chance(0.5) ? latin1("\n") : any(), arg, end());
    }
    return concat(parts);
  }

  /** A command as one inline line. */
  #inline(args: Bytes[]): Bytes {
    const r = this.#r;
    const parts: Bytes[] = [];
    if (r.chance(0.1)) parts.push(latin1(r.pick([" ", "\t", "  ", "\v", "\f", "\r", " \t"])));
    args.forEach((arg, i) => {
      if (i > 0) parts.push(latin1(this.#separator()));
      parts.push(this.#inlineArgument(arg));
    });
    if (r.chance(0.1)) parts.push(latin1(r.pick([" ", "\t", "  ", "\r", "\v"])));
    parts.push(latin1(r.weighted([[8, "\r\n"], [2, "\n"], [1, "\r\r\n"]])));
    return concat(parts);
  }

  #separator(): string {
    return this.#r.weighted([
      [30, " "],
      [3, "\t"],
      [3, "  "],
      [1, " \t "],
      [1, "\r"],
      [1, "\v"],
      [1, "\f"],
      [1, " \v"],
      [1, "\f "],
    ]);
  }

  /** An argument in an inline line: plain when it can be, else quoted (double or single). */
  #inlineArgument(arg: Bytes): Bytes {
    const r = this.#r;
    const plain = arg.length > 0 && arg[0] !== 0x0b && arg[0] !== 0x0c &&
      arg.every((b) => !INLINE_SPECIAL.has(b) || b === 0x0b || b === 0x0c);
    if (plain && r.chance(0.8)) return arg;
    if (!arg.includes(LF) && !arg.includes(NUL) && !arg.includes(0x5c) && r.chance(0.3)) {
      return latin1(`'${chars(arg).replaceAll("'", "\\'")}'`);
    }
    let text = '"';
    for (const b of arg) {
      const c = String.fromCharCode(b);
      const hex = () => `\\x${this.#hex(b)}`;
      if (b === 0x22) text += '\\"';
      else if (b === 0x5c) text += "\\\\";
      else if (b === LF) text += r.chance(0.5) ? "\\n" : hex();
      else if (b === NUL) text += hex();
      else if (b === CR) text += r.pick(["\\r", c, hex()]);
      else if (b === 0x09) text += r.pick(["\\t", c, hex()]);
      else if (b === 0x07) text += r.pick(["\\a", hex()]);
      else if (b === 0x08) text += r.pick(["\\b", hex()]);
      else if (b < 0x20 || b >= 0x7f) text += r.chance(0.5) ? c : hex();
      else text += r.chance(0.05) ? hex() : c;
    }
    return latin1(text + '"');
  }

  /** Two hex digits of `b`, each in either case. */
  #hex(b: number): string {
    const digits = b.toString(16).padStart(2, "0");
    return [...digits].map((d) => (this.#r.chance(0.5) ? d.toUpperCase() : d)).join("");
  }

  /**
   * A flood of GETs, multibulk and inline, as client libraries and load
   * generators pipeline them (sipdir answers those without its general
   * parser), mostly misses.
   */
  #getFlood(): Bytes[] {
    const r = this.#r;
    const frames: Bytes[] = [];
    const inline = r.float();
    for (let i = r.between(50, 300); i > 0 && this.#budget > 0; i--) {
      const key = r.chance(0.3) ? this.#key() : latin1(`nobody-${r.int(1000)}`);
      this.#budget -= 10;
      const args = [this.#name("get"), key];
      frames.push(
        r.chance(inline)
          ? this.#inline(args)
          : r.chance(0.05)
          ? this.#sloppy(args)
          : multibulk(args),
      );
    }
    return frames;
  }

  /** Inline lines that only inline parsing sees: empty ones, odd escapes, quotes in odd places. */
  #inlineOddity(): Bytes {
    const r = this.#r;
    const echo = chars(this.#name("echo"));
    const escapes = [
      "\\x41",
      "\\x4",
      "\\xg1",
      "\\xZZ",
      "\\x",
      "\\n",
      "\\r",
      "\\t",
      "\\b",
      "\\a",
      "\\\\",
      '\\"',
      "\\q",
      "\\'",
      "'",
      "\xe9",
      "\\xff",
      "\\x00",
      "\\xFf",
      " ",
      "a",
    ];
    const pieces = (n: number, from: string[]) => {
      let text = "";
      for (let i = r.between(0, n); i > 0; i--) text += r.pick(from);
      return text;
    };
    return latin1(
      r.weighted<() => string>([
        [4, () => r.pick(["\r\n", "\n", "   \r\n", "\t\r\n", "\r\r\n", "\v\r\n", " \f \r\n"])],
        [4, () => `${echo} "${pieces(6, escapes)}"\r\n`],
        [2, () => `${echo} '${pieces(6, ["a", "\\'", "\\", "\\n", '"', " "])}'\r\n`],
        [1, () => `${echo} "abc\r\n`],
        [1, () => `${echo} 'abc\r\n`],
        [1, () => `${echo} "a\\"\r\n`],
        [1, () => `${echo} "a"b\r\n`],
        [1, () => `${echo} 'a'b\r\n`],
        [1, () => `${echo} a"b c"\r\n`],
        [1, () => `${echo} a'b c'\r\n`],
        [1, () => `${echo} ""\r\n`],
        [1, () => `${echo} "a""b"\r\n`],
        [1, () => `"${chars(this.#name("ping"))}"\r\n`],
        [1, () => `${chars(this.#name("ping"))}\0\r\n`],
        [1, () => `${echo} a\0b\r\n`],
        [4, () => {
          // What sipdir's inline GET shortcut must leave to the general parser.
          const get = chars(this.#name("get"));
          const key = r.pick(["k", "x", "GET", "nobody", "a b", "MixedCase@Example.COM"]);
          return r.pick([
            `${get} a"b\r\n`,
            `${get} a'b\r\n`,
            `${get} ${key}"\r\n`,
            `${get} "${key}"\r\n`,
            `${get} '${key}'\r\n`,
            `${get} "${key}"x\r\n`,
            `  ${get}   ${key}  \r\n`,
            `${get}\t${key}\r\n`,
            `${get} ${key}\r\r\n`,
            `${get} ${key} \n`,
            `${get} ${key} ${key}\r\n`,
            `${get}\r\n`,
            `${get} \r\n`,
            `${get}${key}\r\n`,
            `${get} ${key}\r${key}\n`,
          ]);
        }],
      ])(),
    );
  }

  /** A malformed frame: what follows it is read as it comes, or ignored once the server closes. */
  #malformed(): Bytes {
    const r = this.#r;
    const ping = chars(this.#name("ping"));
    return r.weighted<() => Bytes>([
      [4, () => latin1(`*${this.#badNumber(false)}\r\n`)],
      [3, () => latin1(`*-${this.#digits(r.between(1, 21))}\r\n`)],
      [2, () => latin1(r.pick(["*0\r\n", "*-1\r\n", "*-0\r\n", "*\r\n"]))],
      [1, () => latin1(`*1\r${String.fromCharCode(r.int(256))}$4\r\n${ping}\r\n`)],
      [1, () => latin1(`*1\0\r\n$4\r\n${ping}\r\n`)],
      [4, () => latin1(`*${r.between(1, 3)}\r\n$${this.#badNumber(true)}\r\n${ping}\r\n`)],
      [
        2,
        () =>
          latin1(
            `*1\r\n${r.pick(["+", ":", "*", "-", "x", "\xff", " ", "\t", "\r"])}4\r\n${ping}\r\n`,
          ),
      ],
      [1, () => latin1(`*1\r\n$4\0\r\n${ping}\r\n`)],
      [1, () => latin1(`*1\r\n$4\r${String.fromCharCode(r.int(256))}${ping}\r\n`)],
      [2, () => this.#shortLength()],
      [2, () => this.#countAbove()],
      [2, () => this.#countBelow()],
      [2, () => this.#badLength()],
    ])();
  }

  /**
   * A number for a `*` line (that Redis refuses, ignores or takes) or a `$`
   * line (that Redis refuses: a length it took would read the following
   * frames as data), never in the ranges excluded by design.
   */
  #badNumber(bulk: boolean): string {
    const r = this.#r;
    for (;;) {
      const text = r.weighted<() => string>([
        [6, () =>
          r.pick([
            "abc",
            "",
            "1x",
            "+1",
            "01",
            "-0",
            " 1",
            "1 ",
            "1.0",
            "-1",
            "-5",
            "2147483648",
            "536870913",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "0x10",
          ])],
        [3, () => (r.chance(0.3) ? "-" : "") + this.#digits(r.between(1, 21))],
        [1, () => chars(this.#hostile(1, 6).filter((b) => b !== CR && b !== NUL))],
      ])();
      // string2ll's rules: what Redis would take as a number.
      if (/^-?[1-9][0-9]*$|^0$/.test(text) && text.length < 21) {
        const n = BigInt(text);
        if (n >= -(2n ** 63n) && n < 2n ** 63n) {
          if (bulk && n >= 0n && n <= BigInt(MAX_BULK)) continue;
          if (!bulk && n > BigInt(MAX_ARGS) && n <= BigInt(INT_MAX)) continue;
        }
      }
      return text;
    }
  }

  /**
   * A command whose last argument's length is short of its bytes: Redis
   * takes that many, skips two, and reads the rest as an inline line (of a
   * name's tail or digits, which no server knows as a command).
   */
  #shortLength(): Bytes {
    const r = this.#r;
    const args = [this.#name(r.pick(["ping", "echo", "get", "exists", "select", "dbsize"]))];
    if (r.chance(0.5)) args.push(latin1(this.#digits(r.between(1, 10))));
    const last = args[args.length - 1];
    const head = multibulk(args.slice(0, -1)).subarray(`*${args.length - 1}\r\n`.length);
    const short = latin1(`$${r.between(0, last.length - 1)}\r\n`);
    return concat([latin1(`*${args.length}\r\n`), head, short, last, latin1("\r\n")]);
  }

  /** A command (not MGET) whose count promises more arguments than follow. */
  #countAbove(): Bytes {
    const r = this.#r;
    const args = this.#command();
    if (chars(args[0]).toLowerCase() === "mget") args[0] = this.#name("exists");
    const frame = multibulk(args);
    const more = latin1(`*${args.length + r.between(1, 3)}\r\n`);
    return concat([more, frame.subarray(`*${args.length}\r\n`.length)]);
  }

  /** A command (not MGET) with a `$` line Redis refuses in place of one of its lengths. */
  #badLength(): Bytes {
    const r = this.#r;
    let args = this.#command();
    if (asciiLower(args[0]) === "mget") args = [this.#name("get"), this.#key()];
    const at = r.int(args.length);
    const parts: Bytes[] = [latin1(`*${args.length}\r\n`)];
    args.forEach((arg, i) => {
      const length = i === at ? this.#badNumber(true) : String(arg.length);
      parts.push(latin1(`$${length}\r\n`), arg, latin1("\r\n"));
    });
    return concat(parts);
  }

  /**
   * A command whose count is below its arguments: those left over are read
   * as inline lines; none starts a count, or a command either server knows.
   */
  #countBelow(): Bytes {
    const r = this.#r;
    // HELLO without some of its arguments may succeed, which is not compared.
    let args = this.#command();
    if (asciiLower(args[0]) === "hello") args = [this.#name("echo"), this.#message()];
    if (args.length < 2) args.push(latin1("extra"));
    const count = r.between(1, args.length - 1);
    const safe = args.map((arg, i) => {
      if (i < count) return arg;
      const bad = arg[0] === 0x2a || arg.includes(LF) || this.#u.known.has(firstToken(arg));
      return bad ? latin1("x") : arg;
    });
    const frame = multibulk(safe);
    return concat([latin1(`*${count}\r\n`), frame.subarray(`*${safe.length}\r\n`.length)]);
  }

  /** A frame only ever last: it leaves the parser in the middle of something the end of the stream interrupts. */
  #lastFrame(): Bytes {
    const r = this.#r;
    return r.weighted<() => Bytes>([
      [4, () => {
        // A command (not MGET) cut short.
        let args = this.#command();
        if (chars(args[0]).toLowerCase() === "mget") args = [this.#name("echo"), this.#message()];
        const frame = multibulk(args);
        return frame.subarray(0, r.between(1, frame.length - 1));
      }],
      [
        1,
        () => latin1(`*2\r\n$4\r\n${chars(this.#name("echo"))}\r\n$${r.between(4, 40)}\r\nabc\r\n`),
      ],
      [2, () => {
        // Garbage: inline lines, never a count or a length.
        const bytes = this.#hostile(1, 200);
        return bytes.map((b) => (b === 0x2a || b === 0x24 ? 0x2e : b));
      }],
      [1, () => latin1(`${chars(this.#name("get"))} ${chars(this.#name("ping"))}`)],
    ])();
  }

  // Arguments.

  /** A command name in one of its cases. */
  #name(name: string): Bytes {
    return this.#mixCase(name);
  }

  #mixCase(name: string): Bytes {
    const r = this.#r;
    const mode = r.int(4);
    if (mode === 0) return latin1(name);
    if (mode === 1) return latin1(name.toUpperCase());
    return latin1([...name].map((c) => (r.chance(0.5) ? c.toUpperCase() : c)).join(""));
  }

  /** A key: a hit, a miss, empty, a near miss, binary. */
  #key(counts = true): Bytes {
    const r = this.#r;
    const u = this.#u;
    const x = r.float();
    const registration = () => (r.chance(0.25) ? r.pick(u.special) : r.pick(u.plain));
    if (x < 0.45) {
      const reg = registration();
      if (counts) {
        if (this.#budget < reg.line.length + 500) return latin1(`nobody-${r.int(1000)}`);
        this.#budget -= reg.line.length + 12;
      }
      return reg.key;
    }
    if (x < 0.6) return latin1(r.pick(["nobody", `nobody-${r.int(1000)}`, "unknown", "key:1"]));
    if (x < 0.65) return new Uint8Array(0);
    if (x < 0.75) {
      // Another case: a miss (keys are case-sensitive).
      const key = registration().key.slice();
      const letters = [...key.keys()].filter((i) =>
        (key[i] | 0x20) >= 0x61 && (key[i] | 0x20) <= 0x7a
      );
      if (letters.length > 0) key[r.pick(letters)] ^= 0x20;
      else if (counts) this.#budget -= 1000;
      return key;
    }
    if (x < 0.8) {
      const key = registration().key;
      return r.chance(0.5)
        ? concat([key, latin1(r.pick([" ", "\0", "x", "\r\n"]))])
        : key.subarray(1);
    }
    return this.#hostile(0, 40);
  }

  /** PING's or ECHO's message: short mostly, up to --max-line. */
  #message(): Bytes {
    const r = this.#r;
    const bytes = r.chance(0.02) ? this.#hostile(MAX_LINE - 50, MAX_LINE) : this.#hostile(0, 60);
    this.#budget -= bytes.length + 16;
    return bytes;
  }

  /** Arguments of an unknown command or subcommand: up to `max`, some long enough to be cut. */
  #junkArgs(max: number): Bytes[] {
    const r = this.#r;
    const args: Bytes[] = [];
    for (let i = r.small(max + 1); i > 0; i--) {
      args.push(r.chance(0.1) ? this.#hostile(100, 300) : this.#hostile(0, 30));
    }
    return args;
  }

  /** A name neither Redis nor sipdir knows as a command. */
  #unknownName(): Bytes {
    const r = this.#r;
    for (;;) {
      const name = r.weighted<() => Bytes>([
        [4, () => this.#mixCase(chars(this.#bytes(r.between(1, 12), 0x61, 0x7a)))],
        [3, () => this.#hostile(1, 20)],
        [2, () => {
          const known = chars(this.#mixCase(this.#knownName()));
          const junk = chars(this.#hostile(1, 3));
          return latin1(r.chance(0.5) ? known + junk : junk + known);
        }],
        [2, () => {
          // A known name with a look-alike: Unicode lowercasing must not make it known.
          const known = this.#knownName();
          const places = [...known].flatMap((c, i) => (c in LOOKALIKES ? [i] : []));
          if (places.length === 0) return latin1(`${known}-`);
          const at = r.pick(places);
          const alike = r.pick(LOOKALIKES[known[at]]);
          return encoder.encode(known.slice(0, at) + alike + known.slice(at + 1));
        }],
        [
          1,
          () =>
            r.chance(0.5) ? this.#hostile(100, 300) : this.#bytes(r.between(120, 300), 0x61, 0x7a),
        ],
        [1, () => latin1(r.pick(["", "*", "$", "-", "+1", "0", "\r", "\n", "\0"]))],
      ])();
      if (!this.#u.known.has(nameKey(name))) return name;
    }
  }

  /** A subcommand Redis's CONFIG or CLIENT does not have. */
  #subcommand(known: Set<string>): Bytes {
    const r = this.#r;
    for (;;) {
      const name = r.chance(0.6)
        ? this.#mixCase(chars(this.#bytes(r.between(1, 10), 0x61, 0x7a)))
        : this.#hostile(0, r.chance(0.1) ? 200 : 12);
      if (!known.has(nameKey(name))) return name;
    }
  }

  /** A configuration parameter that does not exist. */
  #noSuchName(): Bytes {
    const r = this.#r;
    return r.weighted<() => Bytes>([
      [3, () => latin1(`nosuch-${chars(this.#bytes(r.between(1, 8), 0x61, 0x7a))}`)],
      [1, () => latin1(`${r.pick(["save", "appendonly", "databases"])}-x`)],
      [1, () => concat([latin1("nosuch"), this.#hostile(0, 8)])],
      [1, () => latin1(r.pick(["", "nosuch*", "nosuch?", "nosuch[ab]"]))],
    ])();
  }

  #knownName(): string {
    return this.#r.pick([...COMMANDS.keys()]);
  }

  /** `n` bytes in [low, high]. */
  #bytes(n: number, low: number, high: number): Bytes {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = this.#r.between(low, high);
    return bytes;
  }

  /** Mostly printable bytes, with white space, quotes, CR, LF, NUL and bytes over 0x7f among them. */
  #hostile(min: number, max: number): Bytes {
    const r = this.#r;
    const bytes = new Uint8Array(r.between(min, max));
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = r.chance(0.7)
        ? r.between(0x21, 0x7e)
        : r.pick([CR, LF, NUL, 0x09, 0x0b, 0x0c, 0x20, 0x22, 0x27, 0x5c, r.between(0x80, 0xff)]);
    }
    return bytes;
  }

  #digits(n: number): string {
    let text = String(this.#r.between(1, 9));
    for (let i = 1; i < n; i++) text += String(this.#r.int(10));
    return text;
  }
}

/** `args` with those from `from` on shuffled. */
function shuffle(r: Random, args: Bytes[], from: number): Bytes[] {
  for (let i = args.length - 1; i > from; i--) {
    const j = from + r.int(i - from + 1);
    [args[i], args[j]] = [args[j], args[i]];
  }
  return args;
}

/** The first word of `arg` read as an inline line, quotes dropped, in lower case. */
function firstToken(arg: Bytes): string {
  const space = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === NUL;
  let i = 0;
  while (i < arg.length && space(arg[i])) i++;
  let j = i;
  while (j < arg.length && !space(arg[j])) j++;
  return asciiLower(arg.subarray(i, j).filter((b) => b !== 0x22 && b !== 0x27));
}

/**
 * What Redis may take a name for: up to its first NUL, ASCII letters
 * lowered. Redis finds command, subcommand and parameter names in hash
 * tables seeded at random, and compares them with `strcasecmp`, which stops
 * at a NUL: `GET\0x` is GET whenever it falls in GET's bucket.
 */
function nameKey(bytes: Bytes): string {
  const nul = bytes.indexOf(NUL);
  return asciiLower(nul < 0 ? bytes : bytes.subarray(0, nul));
}

/** ASCII letters lowered, other bytes kept: how Redis matches command names. */
function asciiLower(bytes: Bytes): string {
  return chars(bytes.map((b) => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b)));
}

// ---------------------------------------------------------------------------
// Exchanges

/** Where a stream is cut into writes, and the pause after each cut (-1: none, 0: a macrotask, else ms). */
interface Plan {
  cuts: number[];
  pauses: number[];
}

/** What a server sent back, and whether it closed. */
interface Outcome {
  bytes: Bytes;
  /** It closed (or reset) the connection, or still had it open at the timeout. */
  closed: boolean;
}

function pause(ms: number): Promise<void> | void {
  if (ms < 0) return;
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Errors of a write or a shutdown on a connection the server has closed. */
function closedByPeer(error: unknown): boolean {
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.ConnectionAborted;
}

async function writeAll(conn: Deno.Conn, bytes: Bytes): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

/**
 * Sends `data` on a new connection to `port`, cut as `plan` says, shuts the
 * write side and reads until the server closes (or CLOSE_TIMEOUT passes).
 */
async function exchange(port: number, data: Bytes, plan: Plan): Promise<Outcome> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const received: Bytes[] = [];
  let abandoned = false;
  const reading = (async (): Promise<boolean> => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (error) {
        if (abandoned) return false;
        if (error instanceof Deno.errors.ConnectionReset) return true;
        throw error;
      }
      if (n === null) return true;
      received.push(buf.slice(0, n));
    }
  })();
  try {
    let at = 0;
    for (let i = 0; i <= plan.cuts.length; i++) {
      const end = i < plan.cuts.length ? plan.cuts[i] : data.length;
      await writeAll(conn, data.subarray(at, end));
      at = end;
      if (i < plan.cuts.length) await pause(plan.pauses[i]);
    }
    await conn.closeWrite();
  } catch (error) {
    // Closed by the server first (QUIT, a protocol error): what it sent is what counts.
    if (!closedByPeer(error)) throw error;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<null>((resolve) =>
    timer = setTimeout(() => resolve(null), CLOSE_TIMEOUT)
  );
  let closed = await Promise.race([reading, timeout]);
  clearTimeout(timer);
  if (closed === null) {
    abandoned = true;
    conn.close();
    closed = await reading;
  } else {
    conn.close();
  }
  return { bytes: concat(received), closed };
}

/**
 * Sends `request` on a new connection and reads `count` whole replies;
 * returns each one's bytes.
 */
async function roundTrip(port: number, request: Bytes, count: number): Promise<Bytes[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        conn.close();
        reject(new Error(`no ${count} replies from port ${port} within 30 s`));
      }, 30_000);
    });
    const work = (async () => {
      const writing = writeAll(conn, request);
      let buf = new Uint8Array(64 * 1024);
      let len = 0;
      const replies: Bytes[] = [];
      let at = 0;
      while (replies.length < count) {
        const end = replyEnd(buf, at, len);
        if (end === -2) throw new Error(`not a RESP reply: ${escape(buf.subarray(at, len))}`);
        if (end >= 0) {
          replies.push(buf.slice(at, end));
          at = end;
          continue;
        }
        if (len === buf.length) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        }
        const n = await conn.read(buf.subarray(len));
        if (n === null) throw new Error(`port ${port} closed after ${replies.length} replies`);
        len += n;
      }
      await writing;
      return replies;
    })();
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed at the timeout.
    }
  }
}

// ---------------------------------------------------------------------------
// The servers

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** A redis-server process on loopback, its log (its standard output) copied to a file. */
class RedisServer {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  /** The copy of its log to the file, and the reading of its stderr: done when it exits. */
  readonly #reading: Promise<unknown>;

  private constructor(child: Deno.ChildProcess, port: number, reading: Promise<unknown>) {
    this.child = child;
    this.port = port;
    this.#reading = reading;
  }

  /** Starts redis-server on a free port; resolves once it logs that it accepts connections. */
  static async start(dir: string): Promise<RedisServer> {
    for (let attempt = 1;; attempt++) {
      const port = freePort();
      const path = `${dir}/redis-${attempt}.log`;
      let child: Deno.ChildProcess;
      try {
        child = new Deno.Command("redis-server", {
          args: [
            "--port",
            String(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--databases",
            "1",
            "--dir",
            dir,
            "--logfile",
            "",
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
      } catch (error) {
        throw new Error(`cannot run redis-server (Debian: redis-server): ${error}`);
      }
      const [toFile, watched] = child.stdout.tee();
      const file = await Deno.open(path, { write: true, create: true, truncate: true });
      const copying = toFile.pipeTo(file.writable);
      const stderr = new Response(child.stderr).text();
      // Its log, line by line, until it is ready or exits.
      let log = "";
      let ready = false;
      const lines = watched.pipeThrough(new TextDecoderStream()).getReader();
      const timer = setTimeout(() => lines.cancel(), 20_000);
      for (;;) {
        const chunk = await lines.read();
        if (chunk.done) break;
        log += chunk.value;
        if (/Ready to accept connections/.test(log)) {
          ready = true;
          break;
        }
      }
      clearTimeout(timer);
      await lines.cancel();
      // What it says on stderr (nothing, normally) is read, and dropped once it runs.
      if (ready) return new RedisServer(child, port, Promise.all([copying, stderr]));
      try {
        child.kill("SIGKILL");
      } catch {
        // Exited already.
      }
      await child.status;
      await copying;
      const message = `redis-server did not start on port ${port}; its log:\n${log}${await stderr}`;
      // Its port taken meanwhile, maybe: another one.
      if (attempt === 3 || !/Address already in use/.test(log)) throw new Error(message);
    }
  }

  async stop(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await this.child.status;
    await this.#reading;
  }
}

/** Sends one command and returns its reply. */
async function ask(port: number, args: Bytes[]): Promise<Bytes> {
  return (await roundTrip(port, multibulk(args), 1))[0];
}

function assertReply(actual: Bytes, expected: string | Bytes, what: string): void {
  const bytes = typeof expected === "string" ? latin1(expected) : expected;
  if (!equalBytes(actual, bytes)) {
    throw new Error(`${what}: got ${escape(actual)}, expected ${escape(bytes)}`);
  }
}

// ---------------------------------------------------------------------------
// Comparing

/** Both servers' outcomes for one stream. */
interface Compared {
  redis: Outcome;
  sipdir: Outcome;
}

/**
 * The replies after the first, a successful HELLO's, which is not compared
 * but for its first line (its type and size): the server's name, version,
 * role and the client's id differ by design. As they are when the first
 * replies are not both whole, or their first lines or errors differ.
 */
function withoutHello(compared: Compared): Compared {
  const { redis, sipdir } = compared;
  const r = replyEnd(redis.bytes, 0, redis.bytes.length);
  const s = replyEnd(sipdir.bytes, 0, sipdir.bytes.length);
  if (r < 0 || s < 0) return compared;
  const head = (bytes: Bytes) => chars(bytes.subarray(0, bytes.indexOf(LF)));
  if (head(redis.bytes) !== head(sipdir.bytes)) return compared;
  if (
    redis.bytes[0] === 0x2d && !equalBytes(redis.bytes.subarray(0, r), sipdir.bytes.subarray(0, s))
  ) {
    return compared;
  }
  return {
    redis: { ...redis, bytes: redis.bytes.subarray(r) },
    sipdir: { ...sipdir, bytes: sipdir.bytes.subarray(s) },
  };
}

function same({ redis, sipdir }: Compared): boolean {
  return redis.closed === sipdir.closed && equalBytes(redis.bytes, sipdir.bytes);
}

function firstDifference(a: Bytes, b: Bytes): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function describe(outcome: Outcome): string {
  const end = outcome.closed ? "then closed" : `still open after ${CLOSE_TIMEOUT} ms`;
  return `${outcome.bytes.length} bytes, ${end}: ${escape(outcome.bytes)}`;
}

/**
 * What kind of difference: the reply each server sent where they first
 * differ, reduced to its type (an error to its words before any quote, digits
 * blurred), and whether each closed. Shrinking keeps it; `FUZZ_ALL` reports
 * each kind once.
 */
function signature({ redis, sipdir }: Compared): string {
  const at = firstDifference(redis.bytes, sipdir.bytes);
  const kind = (bytes: Bytes) => {
    if (at >= bytes.length) return "(nothing)";
    const start = bytes.lastIndexOf(LF, at - 1) + 1;
    let end = bytes.indexOf(CR, start);
    if (end < 0) end = bytes.length;
    const line = chars(bytes.subarray(start, end));
    if (line === "") return "(empty line)";
    if (line[0] !== "-") return line[0];
    return line.split("'")[0].slice(0, 40).replace(/[0-9]+/g, "#");
  };
  const closed = (o: Outcome) => (o.closed ? "" : " (open)");
  return `${kind(redis.bytes)}${closed(redis)} / ${kind(sipdir.bytes)}${closed(sipdir)}`;
}

/** A difference, and the smallest stream found that still shows it. */
interface Difference {
  index: number;
  /** The stream starts with a HELLO whose reply is left out of the replies shown. */
  hello: boolean;
  stream: Bytes;
  plan: Plan;
  compared: Compared;
  signature: string;
  shrunk: { stream: Bytes; compared: Compared } | null;
}

function report(d: Difference): string {
  const { redis, sipdir } = d.compared;
  const lines = [`${d.signature}, stream #${d.index} (${d.stream.length} bytes)`];
  if (d.hello) {
    lines.push("  (the replies shown follow the first command's, HELLO's, not compared)");
  }
  lines.push(
    `  written in pieces cut at [${d.plan.cuts}]: ${escape(d.stream)}`,
    `  redis:  ${describe(redis)}`,
    `  sipdir: ${describe(sipdir)}`,
    `  first difference at byte ${firstDifference(redis.bytes, sipdir.bytes)}`,
  );
  if (d.shrunk === null) {
    lines.push("  (sent in one write, it gets the same replies from both)");
  } else {
    const s = d.shrunk.compared;
    lines.push(
      `  shrunk (${d.shrunk.stream.length} bytes, in one write): ${escape(d.shrunk.stream)}`,
      `    redis:  ${describe(s.redis)}`,
      `    sipdir: ${describe(s.sipdir)}`,
      `    first difference at byte ${firstDifference(s.redis.bytes, s.sipdir.bytes)}`,
    );
  }
  return lines.join("\n");
}

/**
 * The smallest stream found, in `deadline`, that still shows the difference
 * of `kind` when sent in one write: frames dropped, then runs of bytes
 * (halving their length down to one); null when the whole stream, in one
 * write, does not show it.
 */
async function shrink(
  all: Bytes[],
  hello: boolean,
  kind: string,
  run: (stream: Bytes) => Promise<Compared>,
  deadline: number,
): Promise<Difference["shrunk"]> {
  // A HELLO first stays first.
  const prefix = hello ? all[0] : new Uint8Array(0);
  const frames = hello ? all.slice(1) : all;
  let compared = await run(concat(all));
  if (same(compared) || signature(compared) !== kind) return null;
  const keeps = async (stream: Bytes) => {
    const result = await run(concat([prefix, stream]));
    if (same(result) || signature(result) !== kind) return false;
    compared = result;
    return true;
  };
  let current = frames;
  for (let changed = true; changed && Date.now() < deadline;) {
    changed = false;
    for (let i = current.length - 1; i >= 0 && current.length > (hello ? 0 : 1); i--) {
      const candidate = [...current.slice(0, i), ...current.slice(i + 1)];
      if (await keeps(concat(candidate))) {
        current = candidate;
        changed = true;
      }
    }
  }
  let stream = concat(current);
  for (let size = stream.length >> 1; size >= 1 && Date.now() < deadline; size >>= 1) {
    for (let at = 0; at < stream.length && Date.now() < deadline;) {
      const candidate = concat([stream.subarray(0, at), stream.subarray(at + size)]);
      if (candidate.length > 0 && await keeps(candidate)) stream = candidate;
      else at += size;
    }
  }
  return { stream: concat([prefix, stream]), compared };
}

// ---------------------------------------------------------------------------
// The test

Deno.test({
  name: "redis fuzz: random command streams get the same bytes from sipdir as from redis-server",
  async fn() {
    console.log(`redis fuzz: FUZZ_SEED=${SEED} FUZZ_SECONDS=${SECONDS}${ALL ? " FUZZ_ALL=1" : ""}`);
    const dir = await Deno.makeTempDir({ prefix: "sipdir-redis-fuzz-" });
    let redis: RedisServer | undefined;
    let sipdir: SipdirProcess | undefined;
    let draining: Promise<unknown> | undefined;
    try {
      const regs = registrations();
      const dump = `${dir}/regs.jsonl`;
      await Deno.writeTextFile(dump, regs.map((r) => `${r.line}\n`).join(""));
      sipdir = await SipdirProcess.start([
        "-d",
        dump,
        "-p",
        "0",
        "--redis-port",
        "0",
        "--max-line",
        String(MAX_LINE),
      ]);
      const sipdirPort = Number((await sipdir.waitFor(/Redis protocol on \S+:(\d+)/, 60_000))[1]);
      // Its log, read as it comes, so that a full pipe never stalls it.
      draining = sipdir.waitFor(/(?!)/, 86_400_000, sipdir.stderr.length).catch(() => {});
      redis = await RedisServer.start(dir);

      // The same data in Redis, then Redis a read-only replica that keeps it.
      const loaded = await roundTrip(
        redis.port,
        concat(regs.map((r) => multibulk([latin1("SET"), r.key, encoder.encode(r.line)]))),
        regs.length,
      );
      loaded.forEach((reply, i) => assertReply(reply, "+OK\r\n", `SET ${escape(regs[i].key)}`));
      const names = bulkStrings(await ask(redis.port, [latin1("COMMAND"), latin1("LIST")]));
      const known = new Set([...names.map(asciiLower), ...COMMANDS.keys(), "post", "host:"]);
      const nowhere = freePort();
      assertReply(
        await ask(redis.port, [latin1("REPLICAOF"), latin1("127.0.0.1"), latin1(String(nowhere))]),
        "+OK\r\n",
        "REPLICAOF",
      );
      for (const port of [redis.port, sipdirPort]) {
        const name = port === sipdirPort ? "sipdir" : "redis";
        assertReply(await ask(port, [latin1("DBSIZE")]), `:${regs.length}\r\n`, `${name} DBSIZE`);
        for (const reg of [regs[0], ...regs.slice(-SPECIAL_AORS.length)]) {
          const line = encoder.encode(reg.line);
          const expected = concat([latin1(`$${line.length}\r\n`), line, latin1("\r\n")]);
          assertReply(await ask(port, [latin1("GET"), reg.key]), expected, `${name} GET`);
        }
        assertReply(
          await ask(port, [latin1("SET"), latin1("k"), latin1("v")]),
          "-READONLY You can't write against a read only replica.\r\n",
          `${name} SET`,
        );
      }

      const random = new Random(SEED);
      const generator = new Generator(random, {
        plain: regs.slice(0, -SPECIAL_AORS.length),
        special: regs.slice(-SPECIAL_AORS.length),
        known,
        writes: [...COMMANDS.values()].filter((c) => c.kind === "write").map((
          c,
        ) => [c.name, c.arity]),
      });
      const redisPort = redis.port;
      const both = async (stream: Bytes, plan: Plan, hello: boolean): Promise<Compared> => {
        const [r, s] = await Promise.all([
          exchange(redisPort, stream, plan),
          exchange(sipdirPort, stream, plan),
        ]);
        return hello ? withoutHello({ redis: r, sipdir: s }) : { redis: r, sipdir: s };
      };
      const differences = new Map<string, Difference>();
      const started = Date.now();
      const deadline = started + SECONDS * 1000;
      let streams = 0;
      let bytes = 0;
      while (Date.now() < deadline) {
        const { frames, hello } = generator.stream();
        const stream = concat(frames);
        const plan = generator.plan(stream.length);
        const compared = await both(stream, plan, hello);
        streams++;
        bytes += stream.length;
        if (same(compared)) continue;
        const kind = signature(compared);
        if (differences.has(kind)) continue;
        const whole: Plan = { cuts: [], pauses: [] };
        const shrunk = await shrink(
          frames,
          hello,
          kind,
          (stream) => both(stream, whole, hello),
          Date.now() + SHRINK_TIME,
        );
        differences.set(kind, {
          index: streams - 1,
          hello,
          stream,
          plan,
          compared,
          signature: kind,
          shrunk,
        });
        if (!ALL || differences.size >= MAX_REPORTED) break;
      }
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`redis fuzz: ${streams} streams (${bytes} bytes) in ${seconds} s, seed ${SEED}`);
      // Redis kept its data all along: the replies compared were its answers over the data.
      assertReply(await ask(redisPort, [latin1("DBSIZE")]), `:${regs.length}\r\n`, "redis DBSIZE");
      if (differences.size > 0) {
        throw new Error(
          `sipdir and redis-server differ (FUZZ_SEED=${SEED}; ${differences.size} distinct, ` +
            `after ${streams} streams):\n\n` +
            [...differences.values()].map(report).join("\n\n"),
        );
      }
    } finally {
      await redis?.stop();
      if (sipdir !== undefined) {
        sipdir.kill("SIGTERM");
        await sipdir.exit();
        await draining;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
