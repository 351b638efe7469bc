/**
 * The commands of sipdir's Redis protocol: the table the parser checks
 * names and arities against, and the commands that are answered once all
 * their arguments are in (`GET`, `MGET` and `EXISTS` are answered key by key
 * in `redis.ts`).
 *
 * @module
 */

import { timingSafeEqual } from "node:crypto";
import type { Replies } from "../protocol.ts";
import { globMatch } from "./glob.ts";
import { parseInteger } from "./integers.ts";
import type { Resp, RespWriter } from "./reply.ts";

/** How the parser treats a command's arguments. */
export type CommandKind =
  /** Keys answered as they arrive: GET, MGET, EXISTS. */
  | "get"
  | "mget"
  | "exists"
  /** Answered once all arguments are in. */
  | "other"
  /** Refused: sipdir is read-only. */
  | "write";

/** A command sipdir knows. */
export interface CommandSpec {
  /** Lower-case name. */
  readonly name: string;
  /** Redis's arity: the exact argument count with the name, or its negative as a minimum. */
  readonly arity: number;
  /** How its arguments are handled. */
  readonly kind: CommandKind;
  /** Allowed before authentication (AUTH, HELLO, QUIT). */
  readonly noAuth?: boolean;
  /** Run at once even inside MULTI, not queued. */
  readonly transaction?: boolean;
}

const SPECS: CommandSpec[] = [
  { name: "get", arity: 2, kind: "get" },
  { name: "mget", arity: -2, kind: "mget" },
  { name: "exists", arity: -2, kind: "exists" },
  { name: "dbsize", arity: 1, kind: "other" },
  { name: "ping", arity: -1, kind: "other" },
  { name: "echo", arity: 2, kind: "other" },
  { name: "quit", arity: -1, kind: "other", noAuth: true, transaction: true },
  { name: "select", arity: 2, kind: "other" },
  { name: "client", arity: -2, kind: "other" },
  { name: "command", arity: -1, kind: "other" },
  { name: "config", arity: -2, kind: "other" },
  { name: "info", arity: -1, kind: "other" },
  { name: "hello", arity: -1, kind: "other", noAuth: true },
  { name: "auth", arity: -2, kind: "other", noAuth: true },
  { name: "multi", arity: 1, kind: "other", transaction: true },
  { name: "exec", arity: 1, kind: "other", transaction: true },
  { name: "discard", arity: 1, kind: "other", transaction: true },
  { name: "cluster", arity: -2, kind: "other" },
  // Writes, with Redis 7.0's arities: refused, as on a read-only replica.
  ...([
    ["set", -3],
    ["setnx", 3],
    ["setex", 4],
    ["psetex", 4],
    ["getset", 3],
    ["getdel", 2],
    ["getex", -2],
    ["mset", -3],
    ["msetnx", -3],
    ["append", 3],
    ["setrange", 4],
    ["incr", 2],
    ["decr", 2],
    ["incrby", 3],
    ["decrby", 3],
    ["incrbyfloat", 3],
    ["del", -2],
    ["unlink", -2],
    ["expire", -3],
    ["pexpire", -3],
    ["expireat", -3],
    ["pexpireat", -3],
    ["persist", 2],
    ["rename", 3],
    ["renamenx", 3],
    ["copy", -3],
    ["move", 3],
    ["restore", -4],
    ["flushall", -1],
    ["flushdb", -1],
    ["hset", -4],
    ["hsetnx", 4],
    ["hmset", -4],
    ["hdel", -3],
    ["hincrby", 4],
    ["lpush", -3],
    ["rpush", -3],
    ["lpop", -2],
    ["rpop", -2],
    ["lset", 4],
    ["lrem", 4],
    ["ltrim", 4],
    ["sadd", -3],
    ["srem", -3],
    ["zadd", -4],
    ["zrem", -3],
    ["zincrby", 4],
  ] as const).map(([name, arity]): CommandSpec => ({ name, arity, kind: "write" })),
];

/** The commands by lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  SPECS.map((spec) => [spec.name, spec]),
);

/** Whether `argc` arguments (with the name) fit `spec`'s arity. */
export function arityFits(spec: CommandSpec, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}

/** Errors with Redis 7.0's texts. */
export const ERRORS = {
  noauth: "NOAUTH Authentication required.",
  helloNoauth: "NOAUTH HELLO must be called with the client already authenticated, otherwise " +
    "the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the " +
    "RESP protocol version at the same time",
  wrongpass: "WRONGPASS invalid username-password pair or user is disabled.",
  noPassword: "ERR AUTH <password> called without any password configured for the default " +
    "user. Are you sure your configuration is correct?",
  readonly: "READONLY You can't write against a read only replica.",
  dbRange: "ERR DB index is out of range",
  notInteger: "ERR value is not an integer or out of range",
  notInt32: "ERR value is out of range, value must between -2147483648 and 2147483647",
  cluster: "ERR This instance has cluster support disabled",
  clientName: "ERR Client names cannot contain spaces, newlines or special characters.",
  multiNested: "ERR MULTI calls can not be nested",
  execWithoutMulti: "ERR EXEC without MULTI",
  discardWithoutMulti: "ERR DISCARD without MULTI",
  execAbort: "EXECABORT Transaction discarded because of previous errors.",
  noproto: "NOPROTO unsupported protocol version",
  protoNotInteger: "ERR Protocol version is not an integer or out of range",
  syntax: "ERR syntax error",
} as const;

/** `ERR wrong number of arguments for 'name' command`. */
export function arityError(name: string): string {
  return `ERR wrong number of arguments for '${name}' command`;
}

/**
 * Up to `max` bytes of `buf[start, end)`, stopping at a NUL as C's `%s`
 * does, as a string of one char code per byte: how error texts quote what a
 * client sent, byte for byte (the reply writer turns each char code back
 * into its byte, and line ends into spaces).
 *
 * @example
 * ```ts
 * import { byteText } from "./commands.ts";
 * import assert from "node:assert/strict";
 * const bytes = new Uint8Array([0x61, 0xff, 0x0d, 0x00, 0x62]);
 * assert.equal(byteText(bytes, 0, bytes.length, 128), "a\xff\r");
 * ```
 */
export function byteText(buf: Uint8Array, start: number, end: number, max: number): string {
  let text = "";
  for (let i = start; i < end && i - start < max && buf[i] !== 0; i++) {
    text += String.fromCharCode(buf[i]);
  }
  return text;
}

/**
 * `listed` with one more argument quoted as Redis's unknown-command error
 * quotes them (`'arg' `), cut so that the whole stays within 128 bytes.
 *
 * @example
 * ```ts
 * import { listArgument } from "./commands.ts";
 * import assert from "node:assert/strict";
 * const bytes = new TextEncoder().encode("ab");
 * assert.equal(listArgument("'x' ", bytes, 0, 2), "'x' 'ab' ");
 * ```
 */
export function listArgument(listed: string, buf: Uint8Array, start: number, end: number): string {
  return `${listed}'${byteText(buf, start, end, 128 - listed.length)}' `;
}

/**
 * `ERR unknown command 'name', with args beginning with: 'a' 'b' `, from
 * the name and the arguments quoted by {@linkcode listArgument}, as Redis
 * words it.
 */
export function unknownCommandError(name: string, listed: string): string {
  return `ERR unknown command '${name}', with args beginning with: ${listed}`;
}

/** `ERR unknown subcommand 'sub'. Try NAME HELP.` */
export function unknownSubcommandError(command: string, sub: Uint8Array): string {
  return `ERR unknown subcommand '${
    byteText(sub, 0, sub.length, 128)
  }'. Try ${command.toUpperCase()} HELP.`;
}

/** What `INFO` reports: the server's side of it. */
export interface ServerInfo {
  /** sipdir's version. */
  version: string;
  /** Connections open now, all ports. */
  connectedClients(): number;
  /** Seconds since start. */
  uptimeSeconds(): number;
  /** The port of the Redis protocol. */
  port(): number;
}

/** A connection's state in the Redis protocol that commands read and change. */
export interface Session {
  /** RESP version. */
  resp: Resp;
  /** AUTH (or HELLO … AUTH) succeeded, or no password is configured. */
  authenticated: boolean;
  /** `CLIENT SETNAME`. */
  name: Uint8Array | null;
  /** `CLIENT ID`. */
  readonly id: number;
}

/** Compares a password with the configured one in constant time. */
export class Password {
  readonly #expected: Uint8Array;

  /**
   * Keeps the password to check against.
   * @param password the configured password
   */
  constructor(password: Uint8Array) {
    this.#expected = password;
  }

  /** Whether `given` is the password; takes the same time for any wrong one of the same length. */
  matches(given: Uint8Array): boolean {
    // Pad both to one length, so that timingSafeEqual never throws and the
    // time does not depend on where a shorter guess stops.
    const length = Math.max(given.length, this.#expected.length);
    const a = new Uint8Array(length);
    const b = new Uint8Array(length);
    a.set(given);
    b.set(this.#expected);
    return timingSafeEqual(a, b) && given.length === this.#expected.length;
  }
}

/** What the commands answered once all arguments are in need. */
export interface Context {
  /** Writes replies. */
  readonly resp: RespWriter;
  /** The server's side of `INFO`. */
  readonly info: ServerInfo;
  /** The configured password, if any. */
  readonly password: Password | null;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;
const OK = encoder.encode("OK");
const PONG = encoder.encode("PONG");
const QUEUED = encoder.encode("QUEUED");

/** `+OK`. */
export function ok(context: Context, out: Replies): void {
  context.resp.simple(out, OK);
}

/** `+QUEUED`. */
export function queued(context: Context, out: Replies): void {
  context.resp.simple(out, QUEUED);
}

/** An argument's integer by Redis's rules (`string2ll`); NaN when it is not one. */
function integer(bytes: Uint8Array): number {
  return parseInteger(bytes, 0, bytes.length);
}

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/**
 * `bytes` as text with ASCII letters in lower case and nothing else changed,
 * one char per byte: how Redis matches names (`strcasecmp`), so that no
 * Unicode case rule (the Kelvin sign lowering to `k`) makes a name of one
 * that is not.
 *
 * @example
 * ```ts
 * import { asciiLower } from "./commands.ts";
 * import assert from "node:assert/strict";
 * assert.equal(asciiLower(new TextEncoder().encode("GeT")), "get");
 * assert.notEqual(asciiLower(new TextEncoder().encode("UNLIN\u212a")), "unlink");
 * ```
 */
export function asciiLower(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  let text = "";
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    text += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c | 0x20 : c);
  }
  return text;
}

/** `bytes` up to a NUL, in lower case: what C's `strcasecmp` compares of an option's name. */
function optionName(bytes: Uint8Array): string {
  const nul = bytes.indexOf(0);
  return asciiLower(bytes, 0, nul < 0 ? bytes.length : nul);
}

function lower(bytes: Uint8Array): string {
  return asciiLower(bytes);
}

/**
 * Runs a command of kind "other" (not MULTI, EXEC, DISCARD, which the
 * parser runs) with all its arguments, name included, and writes its reply.
 */
export function runOther(
  context: Context,
  session: Session,
  name: string,
  args: readonly Uint8Array[],
  out: Replies,
): void {
  const resp = context.resp;
  const refused = subcommandError(name, args);
  if (refused !== "") {
    resp.error(out, refused);
    return;
  }
  switch (name) {
    case "ping":
      if (args.length > 2) resp.error(out, arityError("ping"));
      else if (args.length === 2) resp.bulk(out, args[1]);
      else resp.simple(out, PONG);
      return;
    case "echo":
      resp.bulk(out, args[1]);
      return;
    case "quit":
      ok(context, out);
      out.close("QUIT");
      return;
    case "select": {
      const index = integer(args[1]);
      if (Number.isNaN(index)) resp.error(out, ERRORS.notInteger);
      else if (index < INT_MIN || index > INT_MAX) resp.error(out, ERRORS.notInt32);
      else if (index !== 0) resp.error(out, ERRORS.dbRange);
      else ok(context, out);
      return;
    }
    case "dbsize":
      resp.integer(out, out.directory.size);
      return;
    case "client":
      client(context, session, args, out);
      return;
    case "command":
      command(context, session, args, out);
      return;
    case "config":
      config(context, session, args, out);
      return;
    case "info":
      resp.verbatim(out, info(context, out, args.slice(1).map(lower)), session.resp);
      return;
    case "hello":
      hello(context, session, args, out);
      return;
    case "auth":
      auth(context, session, args, out);
      return;
    case "cluster":
      resp.error(out, ERRORS.cluster);
      return;
  }
  throw new Error(`no handler for ${name}`);
}

/** Subcommands: their arity, with Redis's meaning (negative: at least). */
const SUBCOMMANDS: Record<string, Record<string, number>> = {
  client: { setname: 3, getname: 2, setinfo: 4, id: 2 },
  command: { count: 2, docs: -2, info: -2 },
  config: { get: -3 },
};

/**
 * Why a command's subcommand is refused (unknown, or the wrong number of
 * arguments), or "": checked before a command is queued by MULTI, as Redis
 * does, and before it runs.
 */
export function subcommandError(name: string, args: readonly Uint8Array[]): string {
  const table = SUBCOMMANDS[name];
  if (table === undefined || (name === "command" && args.length === 1)) return "";
  const sub = lower(args[1]);
  const arity = table[sub];
  if (arity === undefined) return unknownSubcommandError(name, args[1]);
  const fits = arity >= 0 ? args.length === arity : args.length >= -arity;
  return fits ? "" : arityError(`${name}|${sub}`);
}

function client(context: Context, session: Session, args: readonly Uint8Array[], out: Replies) {
  const resp = context.resp;
  switch (lower(args[1])) {
    case "setname":
      if (!validName(args[2])) {
        resp.error(out, ERRORS.clientName);
        return;
      }
      session.name = args[2].length === 0 ? null : args[2];
      ok(context, out);
      return;
    case "getname":
      if (session.name === null) resp.null(out, session.resp);
      else resp.bulk(out, session.name);
      return;
    case "setinfo":
      // Redis 7.2's; newer client libraries send it at connect.
      ok(context, out);
      return;
    case "id":
      resp.integer(out, session.id);
      return;
  }
}

/** Names of printable ASCII only, as Redis requires. */
function validName(name: Uint8Array): boolean {
  for (const c of name) if (c < 0x21 || c > 0x7e) return false;
  return true;
}

function command(context: Context, session: Session, args: readonly Uint8Array[], out: Replies) {
  const resp = context.resp;
  if (args.length === 1) {
    // The command table is not published; clients that ask do without it.
    resp.array(out, 0);
    return;
  }
  const sub = lower(args[1]);
  if (sub === "count") resp.integer(out, 0);
  else if (sub === "docs") resp.map(out, 0, session.resp);
  else resp.array(out, 0);
}

/** What `CONFIG GET` can report: what clients ask to know what they talk to. */
const CONFIG: readonly [Uint8Array, Uint8Array][] = [
  ["save", ""],
  ["appendonly", "no"],
  ["databases", "1"],
].map(([name, value]) => [encoder.encode(name), encoder.encode(value)]);

function config(context: Context, session: Session, args: readonly Uint8Array[], out: Replies) {
  const resp = context.resp;
  // Each parameter once, named as the first argument that matched it named
  // it: a plain name as sent (as Redis does), a pattern's match as known.
  const found = new Map<(typeof CONFIG)[number], Uint8Array>();
  for (let i = 2; i < args.length; i++) {
    const pattern = args[i];
    const glob = pattern.some((c) => c === 0x2a || c === 0x3f || c === 0x5b);
    for (const entry of CONFIG) {
      if (found.has(entry)) continue;
      if (glob ? globMatch(pattern, entry[0], true) : sameName(pattern, entry[0])) {
        found.set(entry, glob ? entry[0] : pattern);
      }
    }
  }
  resp.map(out, found.size, session.resp);
  for (const [[, value], name] of found) {
    resp.bulk(out, name);
    resp.bulk(out, value);
  }
}

/** Whether `given` is `name` in any ASCII case. */
function sameName(given: Uint8Array, name: Uint8Array): boolean {
  if (given.length !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = given[i];
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== name[i]) return false;
  }
  return true;
}

function info(context: Context, out: Replies, sections: readonly string[]): string {
  const server = context.info;
  const all: Record<string, string[]> = {
    server: [
      "redis_version:7.0.0",
      `sipdir_version:${server.version}`,
      "redis_mode:standalone",
      `process_id:${Deno.pid}`,
      `tcp_port:${server.port()}`,
      `uptime_in_seconds:${Math.floor(server.uptimeSeconds())}`,
      `uptime_in_days:${Math.floor(server.uptimeSeconds() / 86_400)}`,
    ],
    clients: [`connected_clients:${server.connectedClients()}`],
    persistence: ["loading:0"],
    replication: ["role:master", "connected_slaves:0"],
    keyspace: [`db0:keys=${out.directory.size},expires=0,avg_ttl=0`],
  };
  const titles: Record<string, string> = {
    server: "Server",
    clients: "Clients",
    persistence: "Persistence",
    replication: "Replication",
    keyspace: "Keyspace",
  };
  const wanted = sections.length === 0 ||
      sections.some((s) => s === "all" || s === "default" || s === "everything")
    ? Object.keys(all)
    : sections.filter((s) => s in all);
  return wanted.map((s) => `# ${titles[s]}\r\n${all[s].map((l) => `${l}\r\n`).join("")}`).join(
    "\r\n",
  );
}

/**
 * `HELLO [version [AUTH user pass] [SETNAME name] …]`, as Redis runs it: the
 * options in order, each taking effect as it is read (an `AUTH` that
 * succeeds stays, even if a later option fails), the version only once all
 * passed.
 */
function hello(context: Context, session: Session, args: readonly Uint8Array[], out: Replies) {
  const resp = context.resp;
  let version = session.resp as number;
  let i = 1;
  if (args.length > 1) {
    version = integer(args[1]);
    if (Number.isNaN(version)) {
      resp.error(out, ERRORS.protoNotInteger);
      return;
    }
    if (version !== 2 && version !== 3) {
      resp.error(out, ERRORS.noproto);
      return;
    }
    i = 2;
  }
  for (; i < args.length; i++) {
    const option = optionName(args[i]);
    const more = args.length - 1 - i;
    if (option === "auth" && more >= 2) {
      if (!checkCredentials(context, args[i + 1], args[i + 2])) {
        resp.error(out, ERRORS.wrongpass);
        return;
      }
      session.authenticated = true;
      i += 2;
    } else if (option === "setname" && more >= 1) {
      const name = args[++i];
      if (!validName(name)) {
        resp.error(out, ERRORS.clientName);
        return;
      }
      session.name = name.length === 0 ? null : name;
    } else {
      resp.error(
        out,
        `ERR Syntax error in HELLO option '${byteText(args[i], 0, args[i].length, Infinity)}'`,
      );
      return;
    }
  }
  if (!session.authenticated) {
    resp.error(out, ERRORS.helloNoauth);
    return;
  }
  session.resp = version as Resp;
  resp.map(out, 7, session.resp);
  resp.bulkText(out, "server");
  resp.bulkText(out, "sipdir");
  resp.bulkText(out, "version");
  resp.bulkText(out, "7.0.0");
  resp.bulkText(out, "proto");
  resp.integer(out, version);
  resp.bulkText(out, "id");
  resp.integer(out, session.id);
  resp.bulkText(out, "mode");
  resp.bulkText(out, "standalone");
  resp.bulkText(out, "role");
  resp.bulkText(out, "master");
  resp.bulkText(out, "modules");
  resp.array(out, 0);
}

function auth(context: Context, session: Session, args: readonly Uint8Array[], out: Replies) {
  const resp = context.resp;
  if (args.length > 3) {
    resp.error(out, ERRORS.syntax);
    return;
  }
  const user = args.length === 3 ? args[1] : null;
  const pass = args[args.length - 1];
  if (context.password === null && user === null) {
    resp.error(out, ERRORS.noPassword);
    return;
  }
  if (!checkCredentials(context, user, pass)) {
    resp.error(out, ERRORS.wrongpass);
    return;
  }
  session.authenticated = true;
  ok(context, out);
}

/** The only user is "default"; without a password, any password is its. */
function checkCredentials(context: Context, user: Uint8Array | null, pass: Uint8Array): boolean {
  const defaultUser = user === null || text(user) === "default";
  const passwordOk = context.password === null || context.password.matches(pass);
  return defaultUser && passwordOk;
}
