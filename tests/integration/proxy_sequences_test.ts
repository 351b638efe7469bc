/**
 * What Kamailio's `ndb_redis`, OpenSIPS's `cachedb_redis` and FreeSWITCH's
 * `mod_hiredis` send to a Redis server, replayed byte for byte over raw TCP
 * against a real sipdir process (`--redis-port 0`), without and with
 * `--redis-password-file`. Each reply is checked the way the module's code
 * checks it: the reply type it tests and, for lookups, the value it keeps
 * (compared with the registration in the data file; nil for unknown AORs).
 *
 * The sequences were read from the modules' sources (not run, not copied):
 *
 * - hiredis (redis/hiredis, hiredis.c, commit 29ea2791c102): every module
 *   formats its commands with it, as RESP arrays of bulk strings.
 *   `redisvFormatCommand` (hiredis.c:323-557) splits the format string at its
 *   literal spaces, while `%s`/`%b` append their value to the current
 *   argument whatever it contains (an empty `%s` still makes an argument) and
 *   `%i`/`%d` print an integer; `redisFormatSdsCommandArgv` (hiredis.c:593)
 *   writes an argv as is. {@linkcode format} and {@linkcode multibulk} below
 *   do the same. No module sends HELLO, so every reply is RESP2.
 * - Kamailio ndb_redis (kamailio/kamailio, src/modules/ndb_redis/, commit
 *   38711a3e788d; the connect sequence is the same on branch 5.6):
 *   redis_client.c:378-391 connects with `AUTH %s` (with `pass=`; any reply
 *   but an error), `PING` and `SELECT %i` (db, 0 by default) through
 *   `redisCommandNR` (redis_client.c:47-55), which only needs *a* reply: an
 *   error reply to PING or SELECT passes. redis_client.c:584-816 reconnects
 *   the same way, plus `FLUSHALL` with `flush_on_reconnect=1`. A lookup
 *   `redis_cmd("dir", "GET %s", "$rU", "r")` is
 *   `redisvCommand(ctx, "GET %s", rU)` (ndb_redis_mod.c:266,
 *   redis_client.c:1222); a failed exchange (NULL reply: EOF after the idle
 *   close) reconnects and sends the command once more
 *   (redis_client.c:1222-1238); an error reply fails `redis_cmd`
 *   (redis_client.c:1277); the config tells a string from nil by
 *   `$redis(r=>type)` (ndb_redis_mod.c:865-876). `redis_pipe_cmd` (at most
 *   1000, redis_client.h:49) then `redis_execute` write all commands at once
 *   and read the replies in order (redis_client.c:921-1040), resending all of
 *   them after a reconnect when the first reply fails.
 * - OpenSIPS cachedb_redis (OpenSIPS/opensips, modules/cachedb_redis/):
 *   branch 3.6 (commit e6c1a35a3450; 3.4 and 3.5 are the same without
 *   `JSON.DEBUG help`) probes on a first connection with `AUTH %s`,
 *   `JSON.DEBUG help` and `CLUSTER NODES` (cachedb_redis_dbase.c:253-283):
 *   an error (or no reply) to CLUSTER NODES means a single instance, anything
 *   else is parsed as a cluster map. It closes that connection and opens the
 *   one it queries on with `AUTH %s` and, only when the URL names a database,
 *   `SELECT %s` (cachedb_redis_dbase.c:162-201). master and 4.0 (commit
 *   8f4f1e1b4015) probe with `AUTH %s` or, when the URL has a user,
 *   `AUTH %s %s`, then `JSON.DEBUG help`, `CLUSTER SHARDS` and
 *   `CLUSTER SLOTS` (cachedb_redis_dbase.c:417-452,
 *   cachedb_redis_utils.c:394-430): any reply but an array means a single
 *   instance. `cache_fetch` is `GET %b` (cachedb_redis_dbase.c:1025): nil is
 *   "not found", a string the value, an error a failure. A failed exchange
 *   reconnects (AUTH, SELECT again, no probe) and retries, two attempts in
 *   all (QUERY_ATTEMPTS, cachedb_redis_dbase.c:39, 841-858); error replies
 *   are not retried. No pipelining.
 * - FreeSWITCH mod_hiredis (signalwire/freeswitch,
 *   src/mod/applications/mod_hiredis/, commit cc93a683ca6e; since v1.10.0):
 *   a pooled connection is opened on first use with `AUTH %s` when the
 *   profile has a `password`, nothing else (hiredis_profile.c:36-48, 85-95).
 *   `hiredis_raw PROFILE GET aor` splits the command at spaces with
 *   `switch_separate_string` (single quotes group, a backslash escapes; since
 *   v1.10.0, commit e73f319aec) and sends the argv (hiredis_profile.c:305-312):
 *   a string is the answer, nil an empty answer (not an error), an error reply
 *   a failure (hiredis_profile.c:237-292). A failed exchange reconnects once
 *   (AUTH again) and resends (hiredis_profile.c:338-365). The limit interface
 *   batches up to `max-pipelined-requests` (20) requests, `get %s` among
 *   them, on one connection (hiredis_pipeline.c:55-64, mod_hiredis.c:381).
 *
 * The idle close is replayed by a second sipdir with `--redis-timeout 1` (by
 * default sipdir keeps idle Redis connections, as Redis does): the test
 * waits for it to close the connection (silently: a byte sent before the
 * close would be taken as the reply to the module's next command), sends the
 * module's next command into the closed connection (no reply: what makes
 * hiredis return NULL), then replays the module's reconnect and resend.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Dataset, record, SipdirProcess, tempFile } from "../helpers.ts";
import { concat } from "../../testing/bytes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How long a reply, or sipdir's idle close, may take. */
const DEADLINE_MS = 10_000;

/** The password sipdir requires when started with one; the space keeps it one argument. */
const PASSWORD = "s3cret pass-€";

/** AORs that exercise the formatting: non-ASCII, a space, hiredis's `%` specifiers. */
const SPECIAL = {
  nonAscii: "zoë-ñandú@例え.jp",
  space: "alice smith@example.com",
  percent: "50%s-off%d@example.com",
} as const;

/** AORs the data file does not hold. */
const UNKNOWN = ["no-such-aor@example.com", "ünknown"];

// ---------------------------------------------------------------------------
// hiredis's command formatting.

function bytes(value: string | Uint8Array): Uint8Array {
  return typeof value === "string" ? encoder.encode(value) : value;
}

/** `*n` then `$len` and each argument: what `redisFormatSdsCommandArgv` writes for an argv. */
function multibulk(args: (string | Uint8Array)[]): Uint8Array {
  const chunks: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const arg of args.map(bytes)) {
    chunks.push(encoder.encode(`$${arg.length}\r\n`), arg, encoder.encode("\r\n"));
  }
  return concat(chunks);
}

/**
 * What `redisvFormatCommand` makes of `template` (only the specifiers the
 * modules use): a literal space ends an argument; `%s` and `%b` (here bytes)
 * add their value to the current argument, spaces and `%` included, and make
 * an argument even when empty; `%i` and `%d` add an integer; `%%` adds `%`.
 */
function format(template: string, ...values: (string | number | Uint8Array)[]): Uint8Array {
  const args: Uint8Array[] = [];
  let current: Uint8Array[] = [];
  let touched = false;
  let next = 0;
  for (let i = 0; i < template.length; i++) {
    const c = template[i];
    if (c === " ") {
      if (touched) args.push(concat(current));
      current = [];
      touched = false;
      continue;
    }
    touched = true;
    if (c !== "%" || i + 1 === template.length) {
      current.push(encoder.encode(c));
      continue;
    }
    const specifier = template[++i];
    if (specifier === "%") {
      current.push(encoder.encode("%"));
    } else if ("sbid".includes(specifier)) {
      const value = values[next++];
      current.push(typeof value === "number" ? encoder.encode(String(value)) : bytes(value));
    } else {
      throw new Error(`format: %${specifier} is not used by the modules`);
    }
  }
  if (touched) args.push(concat(current));
  return multibulk(args);
}

// ---------------------------------------------------------------------------
// Replies, as hiredis types them.

/** A reply by hiredis's REDIS_REPLY_* type (RESP2: no module sends HELLO). */
type Reply =
  | { type: "status"; text: string }
  | { type: "error"; text: string }
  | { type: "integer"; value: number }
  | { type: "string"; bytes: Uint8Array }
  | { type: "nil" }
  | { type: "array"; elements: Reply[] };

/** The line from `pos` to its CRLF, and where the next one starts; null when incomplete. */
function line(buf: Uint8Array, pos: number): { text: string; end: number } | null {
  for (let i = pos; i + 1 < buf.length; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      return { text: decoder.decode(buf.subarray(pos, i)), end: i + 2 };
    }
  }
  return null;
}

/** The RESP2 reply at `pos`, or null when `buf` does not hold all of it yet. */
function parseReply(buf: Uint8Array, pos: number): { reply: Reply; end: number } | null {
  if (pos >= buf.length) return null;
  const head = line(buf, pos + 1);
  if (head === null) return null;
  const type = String.fromCharCode(buf[pos]);
  switch (type) {
    case "+":
      return { reply: { type: "status", text: head.text }, end: head.end };
    case "-":
      return { reply: { type: "error", text: head.text }, end: head.end };
    case ":":
      return { reply: { type: "integer", value: Number(head.text) }, end: head.end };
    case "$": {
      const length = Number(head.text);
      if (length === -1) return { reply: { type: "nil" }, end: head.end };
      if (buf.length < head.end + length + 2) return null;
      const value = buf.slice(head.end, head.end + length);
      return { reply: { type: "string", bytes: value }, end: head.end + length + 2 };
    }
    case "*": {
      const count = Number(head.text);
      if (count === -1) return { reply: { type: "nil" }, end: head.end };
      const elements: Reply[] = [];
      let end = head.end;
      for (let i = 0; i < count; i++) {
        const element = parseReply(buf, end);
        if (element === null) return null;
        elements.push(element.reply);
        end = element.end;
      }
      return { reply: { type: "array", elements }, end };
    }
  }
  throw new Error(`not a RESP2 reply: type byte ${JSON.stringify(type)}`);
}

/** One TCP connection to sipdir's Redis port, as hiredis's blocking context uses it. */
class Wire {
  readonly #conn: Deno.TcpConn;
  #buffer: Uint8Array = new Uint8Array(0);
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects to 127.0.0.1:`port`, as `redisConnectWithTimeout` does (it sends nothing). */
  static async open(port: number): Promise<Wire> {
    return new Wire(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes `data` whole. */
  async send(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length;) at += await this.#conn.write(data.subarray(at));
  }

  /** The next reply; throws when the connection ends first. */
  async reply(): Promise<Reply> {
    for (;;) {
      const parsed = parseReply(this.#buffer, 0);
      if (parsed !== null) {
        this.#buffer = this.#buffer.slice(parsed.end);
        return parsed.reply;
      }
      if (!await this.#fill()) throw new Error("the connection ended before a reply");
    }
  }

  /** `data` sent, then its reply. */
  async exchange(data: Uint8Array): Promise<Reply> {
    await this.send(data);
    return await this.reply();
  }

  /** Waits for sipdir to close the connection, and checks it sent nothing before. */
  async closedByServer(): Promise<void> {
    while (await this.#fill());
    assertEquals(decoder.decode(this.#buffer), "", "bytes sent before the idle close");
  }

  /**
   * Sends `data` into the connection sipdir closed, as a module does with
   * its next command: no reply comes (the write may also fail), which is the
   * NULL reply that makes the module reconnect.
   */
  async sendAfterClose(data: Uint8Array): Promise<void> {
    try {
      await this.send(data);
    } catch (error) {
      if (
        !(error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset)
      ) {
        throw error;
      }
    }
    assertEquals(await this.#fill(), false, "a reply on a connection sipdir had closed");
  }

  /** Closes the connection (what `redisFree` does). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#conn.close();
  }

  /** Reads more into the buffer; false at the end of the connection. */
  async #fill(): Promise<boolean> {
    if (this.#closed) return false;
    const chunk = new Uint8Array(64 * 1024);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), DEADLINE_MS);
    });
    try {
      const n = await Promise.race([this.#conn.read(chunk), timeout]);
      if (n === "timeout") {
        this.close();
        throw new Error(`nothing from sipdir within ${DEADLINE_MS} ms`);
      }
      if (n === null) return false;
      this.#buffer = concat([this.#buffer, chunk.subarray(0, n)]);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) return false;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}

// ---------------------------------------------------------------------------
// The data, and the checks the modules make.

/** The data file: generated registrations and {@linkcode SPECIAL}'s. */
function dataFile(): { text: string; registrations: Map<string, string> } {
  const generated = new Dataset(200, 20261207);
  const lines = generated.aors.map((aor) => generated.answers.get(aor)!);
  for (const aor of Object.values(SPECIAL)) lines.push(record(aor, { note: "special" }));
  const registrations = new Map(lines.map((l) => [JSON.parse(l).addressOfRecord as string, l]));
  return { text: lines.join("\n") + "\n", registrations };
}

const DATA = dataFile();

/** AORs to look up: some generated, the special ones, the unknown ones. */
const LOOKUPS = [
  ...[...DATA.registrations.keys()].filter((_, i) => i % 40 === 0),
  ...Object.values(SPECIAL),
  ...UNKNOWN,
];

/** Shows a reply in an assertion message. */
function show(reply: Reply): string {
  return JSON.stringify(
    reply,
    (_, v) => v instanceof Uint8Array ? decoder.decode(v) : v,
  );
}

/** The module goes on only when the reply is not REDIS_REPLY_ERROR. */
function assertNotError(reply: Reply, what: string): void {
  assertOk(reply.type !== "error", `${what}: the module gives up on ${show(reply)}`);
}

/** The module needs REDIS_REPLY_ERROR here (anything else changes what it does). */
function assertError(reply: Reply, what: string): void {
  assertEquals(reply.type, "error", `${what}: ${show(reply)}`);
}

/**
 * A GET's reply as every module reads it: a string with the registration
 * (byte for byte as in the data file) when the AOR is known, nil when it is
 * not.
 */
function assertLookup(reply: Reply, aor: string, what: string): void {
  const registration = DATA.registrations.get(aor);
  if (registration === undefined) {
    assertEquals(reply, { type: "nil" }, `${what}: unknown ${aor}`);
  } else {
    assertEquals(reply.type, "string", `${what}: ${aor}: ${show(reply)}`);
    const value = (reply as { bytes: Uint8Array }).bytes;
    assertEquals(decoder.decode(value), registration, `${what}: ${aor}`);
  }
}

// ---------------------------------------------------------------------------
// The modules' sequences.

/**
 * ndb_redis connecting or reconnecting: `AUTH %s` with `pass=` (not an
 * error), `PING` and `SELECT %i` (any reply), and `FLUSHALL` (any reply)
 * with `flush_on_reconnect=1`.
 */
async function kamailioConnect(
  wire: Wire,
  password: string | undefined,
  options: { flushOnReconnect?: boolean } = {},
): Promise<void> {
  if (password !== undefined) {
    assertNotError(await wire.exchange(format("AUTH %s", password)), "ndb_redis AUTH");
  }
  // redisCommandNR: any reply (an error reply included) lets the module go on.
  await wire.exchange(format("PING"));
  await wire.exchange(format("SELECT %i", 0));
  if (options.flushOnReconnect) await wire.exchange(format("FLUSHALL"));
}

/** `redis_cmd("dir", "GET %s", "$rU", "r")`. */
function kamailioGet(aor: string): Uint8Array {
  return format("GET %s", aor);
}

/**
 * cachedb_redis 3.6's first connection, closed after: `AUTH %s` (not an
 * error), `JSON.DEBUG help` (an error: no JSON support), `CLUSTER NODES`
 * (an error: a single instance).
 */
async function opensips36Probe(wire: Wire, password: string | undefined): Promise<void> {
  if (password !== undefined) {
    assertNotError(await wire.exchange(format("AUTH %s", password)), "cachedb_redis AUTH");
  }
  assertError(await wire.exchange(format("JSON.DEBUG help")), "cachedb_redis JSON.DEBUG help");
  assertError(await wire.exchange(format("CLUSTER NODES")), "cachedb_redis CLUSTER NODES");
  wire.close();
}

/**
 * cachedb_redis master's first connection, closed after: `AUTH %s` or
 * `AUTH %s %s` (not an error), `JSON.DEBUG help` (an error), then
 * `CLUSTER SHARDS` and `CLUSTER SLOTS` (anything but an array: a single
 * instance).
 */
async function opensipsMasterProbe(wire: Wire, auth: string[] | undefined): Promise<void> {
  if (auth !== undefined) {
    const command = auth.length === 2 ? format("AUTH %s %s", ...auth) : format("AUTH %s", auth[0]);
    assertNotError(await wire.exchange(command), "cachedb_redis AUTH");
  }
  assertError(await wire.exchange(format("JSON.DEBUG help")), "cachedb_redis JSON.DEBUG help");
  for (const command of ["CLUSTER SHARDS", "CLUSTER SLOTS"]) {
    const reply = await wire.exchange(format(command));
    assertOk(reply.type !== "array", `cachedb_redis ${command}: a cluster map ${show(reply)}`);
  }
  wire.close();
}

/**
 * cachedb_redis's connection for queries (and its reconnect): `AUTH` as in
 * the probe, and `SELECT %s` only when the URL names a database; neither may
 * be an error.
 */
async function opensipsNode(
  wire: Wire,
  auth: string[] | undefined,
  database?: string,
): Promise<void> {
  if (auth !== undefined) {
    const command = auth.length === 2 ? format("AUTH %s %s", ...auth) : format("AUTH %s", auth[0]);
    assertNotError(await wire.exchange(command), "cachedb_redis AUTH");
  }
  if (database !== undefined) {
    assertNotError(await wire.exchange(format("SELECT %s", database)), "cachedb_redis SELECT");
  }
}

/** `cache_fetch("redis:dir", aor, ...)`: `GET %b`. */
function opensipsGet(aor: string): Uint8Array {
  return format("GET %b", encoder.encode(aor));
}

/** mod_hiredis opening a pooled connection: `AUTH %s` when the profile has a password. */
async function freeswitchConnect(wire: Wire, password: string | undefined): Promise<void> {
  if (password !== undefined) {
    assertNotError(await wire.exchange(format("AUTH %s", password)), "mod_hiredis AUTH");
  }
}

/**
 * `hiredis_raw sipdir GET <aor>` for an AOR without spaces, quotes or
 * backslashes: `switch_separate_string` makes ["GET", aor] of it.
 */
function freeswitchGet(aor: string): Uint8Array {
  return multibulk(["GET", aor]);
}

// ---------------------------------------------------------------------------
// sipdir.

/** A sipdir process with its Redis port. */
interface Sipdir {
  process: SipdirProcess;
  port: number;
  files: string[];
}

/** Starts sipdir on the data file with `--redis-port 0` and `args`, with a password file if told. */
async function startSipdir(password: string | undefined, args: string[]): Promise<Sipdir> {
  const files = [await tempFile(DATA.text)];
  const flags = ["-d", files[0], "-p", "0", "--redis-port", "0", "--no-inspector-guard", ...args];
  if (password !== undefined) {
    files.push(await tempFile(password));
    flags.push("--redis-password-file", files[1]);
  }
  const process = await SipdirProcess.start(flags);
  try {
    const match = await process.waitFor(/Redis protocol on (\S+):(\d+)/, 60_000);
    return { process, port: Number(match[2]), files };
  } catch (error) {
    process.kill("SIGKILL");
    await process.exit();
    for (const file of files) await Deno.remove(file);
    throw error;
  }
}

async function stopSipdir(sipdir: Sipdir): Promise<void> {
  sipdir.process.kill("SIGTERM");
  await sipdir.process.exit();
  for (const file of sipdir.files) await Deno.remove(file).catch(() => {});
}

// ---------------------------------------------------------------------------
// The tests.

Deno.test("hiredis formatting, as read in redisvFormatCommand and redisFormatSdsCommandArgv", () => {
  const wire = (b: Uint8Array) => decoder.decode(b);
  assertEquals(wire(format("PING")), "*1\r\n$4\r\nPING\r\n");
  assertEquals(wire(format("SELECT %i", 0)), "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n");
  assertEquals(wire(format("CLUSTER NODES")), "*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n");
  assertEquals(wire(format("GET %s", "a b%s")), "*2\r\n$3\r\nGET\r\n$5\r\na b%s\r\n");
  assertEquals(wire(format("GET %s", "")), "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
  assertEquals(wire(format("GET %b", encoder.encode("ë"))), "*2\r\n$3\r\nGET\r\n$2\r\në\r\n");
  assertEquals(
    wire(format("AUTH %s %s", "default", "p w")),
    "*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$3\r\np w\r\n",
  );
  assertEquals(wire(multibulk(["get", "x"])), "*2\r\n$3\r\nget\r\n$1\r\nx\r\n");
});

for (const password of [undefined, PASSWORD]) {
  const mode = password === undefined ? "no password" : "with password";

  Deno.test(`proxy module sequences against sipdir (${mode})`, async (t) => {
    const [sipdir, idle] = await Promise.all([
      startSipdir(password, []),
      // Closes connections idle for a second: the modules' reconnect.
      startSipdir(password, ["--redis-timeout", "1"]),
    ]);
    const wires: Wire[] = [];
    const open = async (port: number) => {
      const wire = await Wire.open(port);
      wires.push(wire);
      return wire;
    };
    try {
      // --- Kamailio ndb_redis -------------------------------------------
      await t.step(`Kamailio ndb_redis (${mode}): connect, then redis_cmd "GET %s"`, async () => {
        const wire = await open(sipdir.port);
        await kamailioConnect(wire, password);
        for (const aor of LOOKUPS) {
          assertLookup(await wire.exchange(kamailioGet(aor)), aor, "ndb_redis GET %s");
        }
        // An empty $rU still makes an argument ("$0"): nil, rpl_nil in the config.
        assertEquals(await wire.exchange(kamailioGet("")), { type: "nil" }, "GET of empty $rU");
      });

      await t.step(
        `Kamailio ndb_redis (${mode}): 1000 redis_pipe_cmd, one redis_execute`,
        async () => {
          const wire = await open(sipdir.port);
          await kamailioConnect(wire, password);
          const aors = Array.from({ length: 1000 }, (_, i) => LOOKUPS[i % LOOKUPS.length]);
          await wire.send(concat(aors.map(kamailioGet)));
          for (const aor of aors) assertLookup(await wire.reply(), aor, "ndb_redis pipelined GET");
        },
      );

      await t.step(`Kamailio ndb_redis (${mode}): idle close, reconnect, GET resent`, async () => {
        const aor = LOOKUPS[0];
        const first = await open(idle.port);
        await kamailioConnect(first, password);
        assertLookup(await first.exchange(kamailioGet(aor)), aor, "before the idle close");
        await first.closedByServer();
        await first.sendAfterClose(kamailioGet(aor));
        // redisc_reconnect_server, then the same redisvCommand once more.
        const second = await open(idle.port);
        await kamailioConnect(second, password);
        assertLookup(await second.exchange(kamailioGet(aor)), aor, "resent after the reconnect");
      });

      await t.step(
        `Kamailio ndb_redis (${mode}): idle close, reconnect with flush_on_reconnect=1`,
        async () => {
          const aors = [LOOKUPS[1], UNKNOWN[0], SPECIAL.nonAscii];
          const first = await open(idle.port);
          await kamailioConnect(first, password);
          await first.send(concat(aors.map(kamailioGet)));
          for (const aor of aors) assertLookup(await first.reply(), aor, "pipelined");
          await first.closedByServer();
          // redis_execute after the close: the batch gets no reply ...
          await first.sendAfterClose(concat(aors.map(kamailioGet)));
          // ... so it reconnects (FLUSHALL: any reply) and resends the whole batch.
          const second = await open(idle.port);
          await kamailioConnect(second, password, { flushOnReconnect: true });
          await second.send(concat(aors.map(kamailioGet)));
          for (const aor of aors) assertLookup(await second.reply(), aor, "resent batch");
        },
      );

      if (password !== undefined) {
        await t.step(
          "Kamailio ndb_redis (with password): server spec without pass=, lookups fail",
          async () => {
            const wire = await open(sipdir.port);
            // PING and SELECT get NOAUTH, which redisCommandNR lets pass ...
            await kamailioConnect(wire, undefined);
            // ... and every redis_cmd fails on its error reply instead of returning data.
            const reply = await wire.exchange(kamailioGet(LOOKUPS[0]));
            assertError(reply, "GET without AUTH");
            assertOk((reply as { text: string }).text.startsWith("NOAUTH"), show(reply));
          },
        );
      }

      // --- OpenSIPS cachedb_redis ---------------------------------------
      const auth = password === undefined ? undefined : [password];

      await t.step(
        `OpenSIPS cachedb_redis 3.6 (${mode}): probe (CLUSTER NODES), connect, cache_fetch`,
        async () => {
          await opensips36Probe(await open(sipdir.port), password);
          const wire = await open(sipdir.port);
          await opensipsNode(wire, auth);
          for (const aor of LOOKUPS) {
            assertLookup(await wire.exchange(opensipsGet(aor)), aor, "cachedb_redis GET %b");
          }
        },
      );

      await t.step(
        `OpenSIPS cachedb_redis master (${mode}): probe (CLUSTER SHARDS, SLOTS), connect, cache_fetch`,
        async () => {
          await opensipsMasterProbe(await open(sipdir.port), auth);
          const wire = await open(sipdir.port);
          await opensipsNode(wire, auth);
          for (const aor of LOOKUPS) {
            assertLookup(await wire.exchange(opensipsGet(aor)), aor, "cachedb_redis GET %b");
          }
        },
      );

      await t.step(
        `OpenSIPS cachedb_redis (${mode}): URL with database /0 (SELECT 0), cache_fetch`,
        async () => {
          await opensips36Probe(await open(sipdir.port), password);
          const wire = await open(sipdir.port);
          await opensipsNode(wire, auth, "0");
          const aor = SPECIAL.space;
          assertLookup(await wire.exchange(opensipsGet(aor)), aor, "after SELECT 0");
        },
      );

      if (password !== undefined) {
        await t.step(
          "OpenSIPS cachedb_redis master (with password): URL user default, AUTH %s %s",
          async () => {
            const user = ["default", password];
            await opensipsMasterProbe(await open(sipdir.port), user);
            const wire = await open(sipdir.port);
            await opensipsNode(wire, user);
            const aor = SPECIAL.nonAscii;
            assertLookup(await wire.exchange(opensipsGet(aor)), aor, "after AUTH default");
          },
        );
      }

      await t.step(
        `OpenSIPS cachedb_redis (${mode}): idle close, reconnect, GET retried`,
        async () => {
          const aor = SPECIAL.percent;
          await opensips36Probe(await open(idle.port), password);
          const first = await open(idle.port);
          await opensipsNode(first, auth);
          assertLookup(await first.exchange(opensipsGet(aor)), aor, "before the idle close");
          await first.closedByServer();
          // First of QUERY_ATTEMPTS (2): no reply, context error set ...
          await first.sendAfterClose(opensipsGet(aor));
          // ... redis_reconnect_node (AUTH, no probe) and the second attempt.
          const second = await open(idle.port);
          await opensipsNode(second, auth);
          assertLookup(await second.exchange(opensipsGet(aor)), aor, "second attempt");
        },
      );

      // --- FreeSWITCH mod_hiredis ---------------------------------------
      await t.step(`FreeSWITCH mod_hiredis (${mode}): connect, hiredis_raw GET`, async () => {
        const wire = await open(sipdir.port);
        await freeswitchConnect(wire, password);
        for (const aor of LOOKUPS.filter((a) => !a.includes(" "))) {
          assertLookup(await wire.exchange(freeswitchGet(aor)), aor, "mod_hiredis GET");
        }
      });

      await t.step(
        `FreeSWITCH mod_hiredis (${mode}): hiredis_raw GET of an AOR with a space`,
        async () => {
          const wire = await open(sipdir.port);
          await freeswitchConnect(wire, password);
          const aor = SPECIAL.space;
          // `GET 'alice smith@example.com'`: the quotes make one argument.
          assertLookup(await wire.exchange(multibulk(["GET", aor])), aor, "quoted");
          // `GET alice smith@example.com` unquoted: three arguments, an error reply
          // (as from Redis), which mod_hiredis reports as a failure.
          const reply = await wire.exchange(multibulk(["GET", ...aor.split(" ")]));
          assertError(reply, "unquoted AOR with a space");
        },
      );

      await t.step(
        `FreeSWITCH mod_hiredis (${mode}): pipeline thread, 20 requests "get %s" at once`,
        async () => {
          const wire = await open(sipdir.port);
          await freeswitchConnect(wire, password);
          const aors = Array.from(
            { length: 20 },
            (_, i) => LOOKUPS.filter((a) => !a.includes(" "))[i % 8],
          );
          await wire.send(concat(aors.map((aor) => multibulk(["get", aor]))));
          for (const aor of aors) assertLookup(await wire.reply(), aor, "pipelined get");
        },
      );

      await t.step(
        `FreeSWITCH mod_hiredis (${mode}): idle close, reconnect, GET resent`,
        async () => {
          const aor = SPECIAL.nonAscii;
          const first = await open(idle.port);
          await freeswitchConnect(first, password);
          assertLookup(await first.exchange(freeswitchGet(aor)), aor, "before the idle close");
          await first.closedByServer();
          // The pooled context looks fine (err 0) until this exchange fails ...
          await first.sendAfterClose(freeswitchGet(aor));
          // ... then hiredis_context_reconnect (AUTH) and the same requests again.
          const second = await open(idle.port);
          await freeswitchConnect(second, password);
          assertLookup(await second.exchange(freeswitchGet(aor)), aor, "resent after reconnect");
        },
      );
    } finally {
      for (const wire of wires) wire.close();
      await Promise.all([stopSipdir(sipdir), stopSipdir(idle)]);
    }
  });
}
