/**
 * The Redis protocol (RESP2, and RESP3 after `HELLO 3`): a read-only Redis
 * whose keys are the AORs of the directory. `GET aor` returns the
 * registration (its compact JSON) or null.
 *
 * The parser works on the bytes where they lie and keeps no offsets between
 * calls, so a command may be split across reads at any byte. `GET`, `MGET`
 * and `EXISTS` are answered key by key as their arguments arrive, and stop
 * at max-pending to resume later: a 200 000-key `MGET` never needs more than
 * one argument of input or max-pending of replies in memory.
 *
 * Every command is bounded as it arrives, as Redis's `networking.c` bounds
 * it: its argument count when its `*n` line is read, each argument's length
 * when its `$n` line is read, and the arguments other commands must keep
 * until they end (with the commands a `MULTI` queues) by the memory they
 * take, checked argument by argument. Nothing a client sends is ever held
 * beyond those bounds, or echoed with its line ends.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { WARM_BATCH } from "../../directory/directory.ts";
import { DEFAULTS } from "../../limits.ts";
import type { Protocol, Replies } from "../protocol.ts";
import { HeldArguments, QueuedCommand, queuedMemory } from "./arguments.ts";
import {
  arityError,
  arityFits,
  asciiLower,
  byteText,
  COMMANDS,
  type CommandSpec,
  type Context,
  ERRORS,
  listArgument,
  ok,
  Password,
  queued,
  runOther,
  type ServerInfo,
  type Session,
  subcommandError,
  unknownCommandError,
} from "./commands.ts";
import { GetScanner, isGet } from "./get_scanner.ts";
import { endsWord, isSpace, splitInline } from "./inline.ts";
import { parseInteger } from "./integers.ts";
import { RespWriter } from "./reply.ts";

const logger = getLogger(["sipdir", "redis"]);

const STAR = 0x2a;
const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;
/** Redis's limit for an inline command, and for a count line. */
const INLINE_MAX = 64 * 1024;
/** Before authentication, as in Redis. */
const UNAUTHENTICATED_ARGS = 10;
const UNAUTHENTICATED_BULK = 16 * 1024;
const INT_MAX = 2 ** 31 - 1;
const GET = COMMANDS.get("get")!;
/** What an unknown command's error quotes of its name and arguments, as Redis quotes them. */
const QUOTED = 128;

/** Options of {@linkcode RedisProtocol}. */
export interface RedisOptions {
  /** Longest argument (a key, a password …), in bytes; a longer one is a protocol error. Default: max-line's, 1024. */
  maxArgument?: number;
  /** Most arguments in one command, its name included; more is a protocol error. Default 1 048 576. */
  maxArguments?: number;
  /**
   * Most memory, in bytes, that the arguments a command keeps until it ends
   * and the commands a `MULTI` queues may take together, counting each
   * argument's bookkeeping as well as its bytes; `GET`, `MGET` and `EXISTS`
   * outside `MULTI` keep none. Default 1 MiB.
   */
  maxCommand?: number;
  /** Require `AUTH` with this password before other commands. */
  password?: Uint8Array;
  /** What `INFO` reports about the server. */
  info: ServerInfo;
}

/** A connection's state in the Redis protocol. */
export interface RedisState extends Session {
  /** Arguments of the current command still to read; 0 between commands. */
  argsLeft: number;
  /** Length of the argument being read, or -1 before its `$` line. */
  bulk: number;
  /** Bytes after the current position already searched for the end of its line, in vain. */
  scanned: number;
  /** The current command's argument count, its name included. */
  argc: number;
  /** Index of the next argument. */
  argi: number;
  /** The current command, once its name is read (null: unknown). */
  spec: CommandSpec | null;
  /** An unknown command's name as sent, as its error quotes it (bytes as char codes). */
  nameSent: string;
  /** An unknown command's arguments as its error quotes them. */
  listed: string;
  /** The error the current command gets once its arguments are read, or "". */
  error: string;
  /** The current command's keys are answered as they arrive. */
  streaming: boolean;
  /** `EXISTS`: keys found so far. */
  found: number;
  /** Arguments kept for commands answered at their end (name included). */
  held: HeldArguments;
  /** Inside `MULTI`. */
  multi: boolean;
  /** Commands queued by `MULTI`. */
  queue: QueuedCommand[];
  /** Memory the queued commands are counted as. */
  queueMemory: number;
  /** A command was refused inside `MULTI`: `EXEC` aborts. */
  multiFailed: boolean;
  /** An `EXEC` whose replies stopped at max-pending: where it resumes. */
  exec: { queue: QueuedCommand[]; command: number; key: number } | null;
}

/**
 * The Redis protocol. One instance serves every connection of a listener.
 *
 * @example
 * ```ts
 * import { RedisProtocol } from "./redis.ts";
 * import { exchange } from "../../../testing/protocol_harness.ts";
 * import assert from "node:assert/strict";
 * const info = { version: "1", connectedClients: () => 1, uptimeSeconds: () => 1, port: () => 6379 };
 * const { output } = await exchange(new RedisProtocol({ info }), "PING\r\nGET nobody\r\n");
 * assert.equal(output, "+PONG\r\n$-1\r\n");
 * ```
 */
export class RedisProtocol implements Protocol<RedisState> {
  /** "redis". */
  readonly name = "redis";
  /** An inline command (64 KiB, as Redis), or the longest argument with its header. */
  readonly maxRequest: number;
  readonly #maxArgument: number;
  readonly #maxArguments: number;
  readonly #maxCommand: number;
  readonly #context: Context;
  readonly #decoder = new TextDecoder();
  readonly #gets = new GetScanner(WARM_BATCH);
  /** What `Directory.warm` read, kept so that its reads are not optimized away. */
  #warmth = 0;
  #nextId = 1;

  /** Creates the protocol with its limits and password. */
  constructor(options: RedisOptions) {
    this.#maxArgument = options.maxArgument ?? DEFAULTS.maxLine;
    this.#maxArguments = options.maxArguments ?? DEFAULTS.redisMaxArguments;
    this.#maxCommand = options.maxCommand ?? DEFAULTS.redisMaxCommand;
    this.maxRequest = Math.max(INLINE_MAX + 2, this.#maxArgument + 32);
    this.#context = {
      resp: new RespWriter(),
      info: options.info,
      password: options.password === undefined ? null : new Password(options.password),
    };
  }

  /** A new connection's state. */
  createState(): RedisState {
    return {
      resp: 2,
      authenticated: this.#context.password === null,
      name: null,
      id: this.#nextId++,
      argsLeft: 0,
      scanned: 0,
      bulk: -1,
      argc: 0,
      argi: 0,
      spec: null,
      nameSent: "",
      listed: "",
      error: "",
      streaming: false,
      found: 0,
      held: new HeldArguments(),
      multi: false,
      queue: [],
      queueMemory: 0,
      multiFailed: false,
      exec: null,
    };
  }

  /** Memory this connection's commands hold: a command's kept arguments and a `MULTI` queue. */
  memory(state: RedisState): number {
    return state.held.memory + state.queueMemory;
  }

  /** Mid-command, or not authenticated yet: not an idle connection that a client keeps. */
  stalled(state: RedisState): boolean {
    return state.argsLeft > 0 || !state.authenticated;
  }

  /** Authenticated (or no password asked for). */
  admitted(state: RedisState): boolean {
    return state.authenticated;
  }

  /** Answers the commands in `buf[pos, len)`, in order; see `Protocol.answer`. */
  answer(
    state: RedisState,
    buf: Uint8Array,
    pos: number,
    len: number,
    _eof: boolean,
    out: Replies,
  ): number {
    if (state.exec !== null) this.#runExec(state, out);
    /** Where the commands already warmed end. */
    let warmed = pos;
    for (;;) {
      if (out.full || out.closing !== "" || state.exec !== null) return pos;
      if (state.argsLeft === 0) {
        // A new command: a multibulk `*n`, or an inline line.
        if (pos >= len) return pos;
        if (pos >= warmed && state.authenticated) warmed = this.#warm(out, buf, pos, len);
        if (buf[pos] === STAR) {
          const next = this.#multibulkGet(state, buf, pos, len, out);
          if (next > 0) {
            // A count line searched in vain before is whole now, and behind us.
            state.scanned = 0;
            pos = next;
            continue;
          }
          const cr = this.#lineEnd(state, buf, pos, len, CR);
          if (cr < 0) {
            if (len - pos > INLINE_MAX) {
              return this.#protocolError(out, "too big mbulk count string");
            }
            return pos;
          }
          const count = parseInteger(buf, pos + 1, cr);
          if (Number.isNaN(count) || count > INT_MAX) {
            return this.#protocolError(out, "invalid multibulk length");
          }
          if (!state.authenticated && count > UNAUTHENTICATED_ARGS) {
            return this.#protocolError(out, "unauthenticated multibulk length");
          }
          if (count > this.#maxArguments) {
            return this.#protocolError(out, "invalid multibulk length");
          }
          pos = cr + 2;
          if (count <= 0) continue;
          this.#begin(state, count);
        } else {
          const lf = this.#lineEnd(state, buf, pos, len, LF);
          if (lf < 0) {
            // No line end within the longest inline request: refuse, or wait for it.
            if (len - pos > INLINE_MAX) return this.#protocolError(out, "too big inline request");
            return pos;
          }
          const end = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
          if (this.#inlineGet(state, buf, pos, end, out)) {
            pos = lf + 1;
            continue;
          }
          const args = splitInline(buf, pos, end);
          if (args === null) return this.#protocolError(out, "unbalanced quotes in request");
          pos = lf + 1;
          if (args.length === 0) continue;
          this.#runInline(state, args, out);
          continue;
        }
      }
      // The arguments of a multibulk command, each `$n` and n bytes.
      while (state.argsLeft > 0) {
        if (state.bulk < 0) {
          if (pos >= len) return pos;
          const cr = this.#lineEnd(state, buf, pos, len, CR);
          if (cr < 0) {
            if (len - pos > INLINE_MAX) {
              return this.#protocolError(out, "too big bulk count string");
            }
            return pos;
          }
          if (buf[pos] !== DOLLAR) {
            return this.#protocolError(
              out,
              `expected '$', got '${byteText(buf, pos, pos + 1, 1)}'`,
            );
          }
          const n = parseInteger(buf, pos + 1, cr);
          if (Number.isNaN(n) || n < 0) return this.#protocolError(out, "invalid bulk length");
          if (!state.authenticated && n > UNAUTHENTICATED_BULK) {
            return this.#protocolError(out, "unauthenticated bulk length");
          }
          if (n > this.#maxArgument) return this.#protocolError(out, "invalid bulk length");
          state.bulk = n;
          pos = cr + 2;
        }
        if (len - pos < state.bulk + 2) return pos;
        const start = pos;
        const end = pos + state.bulk;
        pos = end + 2;
        state.bulk = -1;
        state.argsLeft--;
        this.#argument(state, buf, start, end, out);
        state.argi++;
        if (state.argsLeft === 0) this.#finish(state, out);
        if (out.full || out.closing !== "") return pos;
      }
    }
  }

  /**
   * Where the line that starts at `pos` ends: the offset of its `byte` (CR
   * for a count line, once the byte after it has come too; LF for an inline
   * command); -1 while there is none within the longest line (64 KiB). As
   * with Redis's `strchr`, the search stops at a NUL: a line with one never
   * ends. What was searched in vain is remembered (`state.scanned`), so that
   * a line that arrives a byte at a time costs time linear in its length,
   * not quadratic.
   */
  #lineEnd(state: RedisState, buf: Uint8Array, pos: number, len: number, byte: number): number {
    const limit = Math.min(len, pos + INLINE_MAX + 1);
    let i = pos + state.scanned;
    while (i < limit && buf[i] !== byte && buf[i] !== 0) i++;
    if (i < limit && buf[i] === byte && (byte === LF || i + 1 < len)) {
      state.scanned = 0;
      return i;
    }
    state.scanned = i - pos;
    return -1;
  }

  /**
   * Warms the lookups of the `GET` commands that `buf[pos, len)` starts
   * with, when there are several; returns where they end (past `pos` when
   * there are none, so that the next command is looked at again).
   */
  #warm(out: Replies, buf: Uint8Array, pos: number, len: number): number {
    const gets = this.#gets;
    const n = gets.scan(buf, pos, len);
    if (n > 1) this.#warmth ^= out.directory.warm(gets.hashes, n);
    return n === 0 ? pos + 1 : gets.end;
  }

  /**
   * `GET key` as client libraries send it (`*2\r\n$3\r\nGET\r\n$n\r\nkey\r\n`),
   * whole in `buf` from `pos`: answered where it lies, without the state
   * machine that any multibulk command can go through, which would come to
   * the same reply. Returns where it ends; -1, having done nothing, for
   * anything else.
   */
  #multibulkGet(
    state: RedisState,
    buf: Uint8Array,
    pos: number,
    len: number,
    out: Replies,
  ): number {
    // Below 3, max-argument refuses the name "GET" itself.
    if (!state.authenticated || state.multi || this.#maxArgument < 3) return -1;
    const gets = this.#gets;
    const key = gets.multibulkKey(buf, pos, len);
    if (key < 0 || gets.keyEnd - key > this.#maxArgument) return -1;
    this.#get(state, buf, key, gets.keyEnd, out);
    return gets.keyEnd + 2;
  }

  /** Answers `GET buf[key, keyEnd)`, found by a shortcut rather than the state machine. */
  #get(state: RedisState, buf: Uint8Array, key: number, keyEnd: number, out: Replies): void {
    // The command's name, for the verbose log.
    state.spec = GET;
    this.#key(state, buf, key, keyEnd, out, GET);
    state.spec = null;
  }

  /**
   * `GET key` typed inline (what telnet users and some load generators
   * send), answered where it lies, without splitting it into arguments:
   * when the key has no quotes, splitting would yield exactly its bytes.
   * False, having done nothing, for any other line.
   */
  #inlineGet(
    state: RedisState,
    buf: Uint8Array,
    start: number,
    end: number,
    out: Replies,
  ): boolean {
    if (!state.authenticated || state.multi) return false;
    let p = start;
    while (p < end && isSpace(buf[p])) p++;
    if (end - p < 5 || !isGet(buf, p) || !endsWord(buf[p + 3])) return false;
    p += 4;
    while (p < end && isSpace(buf[p])) p++;
    const key = p;
    for (; p < end && !endsWord(buf[p]); p++) {
      if (buf[p] === 0x22 || buf[p] === 0x27) return false;
    }
    const keyEnd = p;
    while (p < end && isSpace(buf[p])) p++;
    if (key === keyEnd || p !== end) return false;
    this.#get(state, buf, key, keyEnd, out);
    return true;
  }

  #begin(state: RedisState, count: number): void {
    state.argsLeft = count;
    state.argc = count;
    state.argi = 0;
    state.bulk = -1;
    state.spec = null;
    state.nameSent = "";
    state.listed = "";
    state.error = "";
    state.streaming = false;
    state.found = 0;
  }

  /** One argument of a multibulk command, `buf[start, end)`. */
  #argument(state: RedisState, buf: Uint8Array, start: number, end: number, out: Replies): void {
    if (state.argi === 0) {
      this.#command(state, buf, start, end, out);
    } else if (state.streaming) {
      this.#key(state, buf, start, end, out);
    } else if (state.spec === null) {
      // Only what the error message quotes is kept.
      if (state.listed.length < QUOTED) state.listed = listArgument(state.listed, buf, start, end);
    } else if (state.error === "") {
      this.#hold(state, buf, start, end);
    }
  }

  /**
   * Keeps an argument of a command answered at its end, or of one queued by
   * `MULTI`; past max-command the command is refused and keeps nothing more.
   */
  #hold(state: RedisState, buf: Uint8Array, start: number, end: number): void {
    if (state.held.memoryWith(end - start) + state.queueMemory > this.#maxCommand) {
      state.error = state.multi
        ? this.#queueTooBig()
        : `ERR command too big: its arguments take over ${this.#maxCommand} bytes`;
      state.held.clear();
      return;
    }
    state.held.push(buf, start, end);
  }

  /** The command's name: decides how its arguments are handled. */
  #command(state: RedisState, buf: Uint8Array, start: number, end: number, out: Replies): void {
    // GET, the hot path, without decoding its name.
    const spec = end - start === 3 && isGet(buf, start)
      ? GET
      : COMMANDS.get(asciiLower(buf, start, end));
    state.spec = spec ?? null;
    if (spec === undefined) {
      if (isCrossProtocol(buf, start, end)) {
        this.#crossProtocol(out);
        return;
      }
      state.nameSent = byteText(buf, start, end, QUOTED);
      state.error = "unknown";
      return;
    }
    state.error = this.#refusal(state, spec, state.argc);
    if (state.error !== "") return;
    if (!state.multi || spec.transaction) {
      if (spec.kind === "get" || spec.kind === "mget" || spec.kind === "exists") {
        state.streaming = true;
        if (spec.kind === "mget") this.#context.resp.array(out, state.argc - 1);
        return;
      }
    }
    this.#hold(state, buf, start, end);
  }

  #queueTooBig(): string {
    return `ERR MULTI can queue at most ${this.#maxCommand} bytes of commands`;
  }

  /**
   * Why `spec` with `argc` arguments is refused here, in Redis's order; ""
   * if it is not. A refused `EXEC` aborts the transaction, as in Redis
   * (`execCommandAbort`), whether one was open or not.
   */
  #refusal(state: RedisState, spec: CommandSpec, argc: number): string {
    const refusal = !arityFits(spec, argc)
      ? arityError(spec.name)
      : !state.authenticated && !spec.noAuth
      ? ERRORS.noauth
      : spec.kind === "write"
      ? ERRORS.readonly
      : "";
    if (refusal === "" || spec.name !== "exec") return refusal;
    const reason = refusal.startsWith("ERR ") ? refusal.slice(4) : refusal;
    return `EXECABORT Transaction discarded because of: ${reason}`;
  }

  /** After a refused command: a transaction is aborted at its `EXEC`, or ends now if `EXEC` itself was refused. */
  #refused(state: RedisState, spec: CommandSpec | null): void {
    if (spec?.name === "exec") this.#endMulti(state);
    else if (state.multi) state.multiFailed = true;
  }

  /** The current command has all its arguments: its reply, unless its keys were answered already. */
  #finish(state: RedisState, out: Replies): void {
    const resp = this.#context.resp;
    const spec = state.spec;
    if (state.error !== "") {
      const error = state.error === "unknown"
        ? unknownCommandError(state.nameSent, state.listed)
        : state.error;
      resp.error(out, error);
      this.#refused(state, spec);
    } else if (state.multi && !spec!.transaction) {
      this.#queue(state, state.held.list(), out);
    } else if (spec!.kind === "exists") {
      resp.integer(out, state.found);
    } else if (!state.streaming) {
      this.#run(state, spec!, state.held.list(), out);
    }
    state.held.clear();
  }

  /** An inline command, whose arguments all came at once. */
  #runInline(state: RedisState, args: Uint8Array[], out: Replies): void {
    const resp = this.#context.resp;
    const name = args[0];
    const spec = COMMANDS.get(asciiLower(name));
    if (spec === undefined) {
      if (isCrossProtocol(name, 0, name.length)) {
        this.#crossProtocol(out);
        return;
      }
      let listed = "";
      for (let i = 1; i < args.length && listed.length < QUOTED; i++) {
        listed = listArgument(listed, args[i], 0, args[i].length);
      }
      resp.error(out, unknownCommandError(byteText(name, 0, name.length, QUOTED), listed));
      if (state.multi) state.multiFailed = true;
      return;
    }
    const error = this.#refusal(state, spec, args.length);
    if (error !== "") {
      resp.error(out, error);
      this.#refused(state, spec);
    } else if (state.multi && !spec.transaction) {
      this.#queue(state, args, out);
    } else {
      this.#run(state, spec, args, out);
    }
  }

  /** Queues a command inside `MULTI`, unless its subcommand is refused or the queue is full. */
  #queue(state: RedisState, args: Uint8Array[], out: Replies): void {
    const refused = subcommandError(asciiLower(args[0]), args);
    if (refused !== "") {
      this.#context.resp.error(out, refused);
      state.multiFailed = true;
      return;
    }
    const memory = queuedMemory(args);
    if (state.queueMemory + memory > this.#maxCommand) {
      // Memory per client stays bounded, whatever it queues.
      this.#context.resp.error(out, this.#queueTooBig());
      state.multiFailed = true;
      return;
    }
    state.queue.push(QueuedCommand.of(args));
    state.queueMemory += memory;
    queued(this.#context, out);
  }

  /** Runs a command with all its arguments (name included). */
  #run(state: RedisState, spec: CommandSpec, args: readonly Uint8Array[], out: Replies): void {
    const context = this.#context;
    const resp = context.resp;
    switch (spec.name) {
      case "multi":
        if (state.multi) {
          resp.error(out, ERRORS.multiNested);
          return;
        }
        state.multi = true;
        state.queue = [];
        state.queueMemory = 0;
        state.multiFailed = false;
        ok(context, out);
        return;
      case "discard":
        if (!state.multi) {
          resp.error(out, ERRORS.discardWithoutMulti);
          return;
        }
        this.#endMulti(state);
        ok(context, out);
        return;
      case "exec": {
        if (!state.multi) {
          resp.error(out, ERRORS.execWithoutMulti);
          return;
        }
        const { queue, multiFailed } = state;
        this.#endMulti(state);
        if (multiFailed) {
          resp.error(out, ERRORS.execAbort);
          return;
        }
        resp.array(out, queue.length);
        state.exec = { queue, command: 0, key: 1 };
        this.#runExec(state, out);
        return;
      }
      case "get":
      case "mget":
      case "exists": {
        if (spec.kind === "mget") resp.array(out, args.length - 1);
        let found = 0;
        for (let i = 1; i < args.length; i++) {
          if (spec.kind === "exists") {
            found += this.#lookup(state, args[i], 0, args[i].length, out) >= 0 ? 1 : 0;
          } else this.#key(state, args[i], 0, args[i].length, out, spec);
        }
        if (spec.kind === "exists") resp.integer(out, found);
        return;
      }
    }
    runOther(context, state, spec.name, args, out);
  }

  /** Replies to the queued commands of an `EXEC`, until done or max-pending. */
  #runExec(state: RedisState, out: Replies): void {
    const exec = state.exec!;
    while (exec.command < exec.queue.length) {
      const args = exec.queue[exec.command].list();
      const spec = COMMANDS.get(asciiLower(args[0]))!;
      if (spec.kind === "mget") {
        // Resumable key by key: its reply may be large.
        if (exec.key === 1) this.#context.resp.array(out, args.length - 1);
        while (exec.key < args.length) {
          this.#key(state, args[exec.key], 0, args[exec.key].length, out, spec);
          exec.key++;
          if (out.full) return;
        }
      } else {
        this.#run(state, spec, args, out);
      }
      exec.command++;
      exec.key = 1;
      if (out.full) return;
    }
    state.exec = null;
  }

  #endMulti(state: RedisState): void {
    state.multi = false;
    state.queue = [];
    state.queueMemory = 0;
    state.multiFailed = false;
  }

  /** A key of GET or MGET (its value or null), or of EXISTS (counted). */
  #key(
    state: RedisState,
    buf: Uint8Array,
    start: number,
    end: number,
    out: Replies,
    spec: CommandSpec = state.spec!,
  ): void {
    const id = this.#lookup(state, buf, start, end, out);
    if (spec.kind === "exists") {
      if (id >= 0) state.found++;
    } else if (id < 0) {
      this.#context.resp.null(out, state.resp);
    } else {
      this.#context.resp.bulk(out, out.directory.value(id));
    }
  }

  /** Looks `buf[start, end)` up; counts and logs it. */
  #lookup(state: RedisState, buf: Uint8Array, start: number, end: number, out: Replies): number {
    const id = out.directory.find(buf, start, end);
    const counters = out.counters;
    counters.lookups++;
    if (id >= 0) counters.hits++;
    else counters.misses++;
    if (out.verbose) {
      logger.debug("{peer} {command} {key} {result}", {
        peer: out.peer,
        command: state.spec?.name.toUpperCase() ?? "EXEC",
        key: this.#decoder.decode(buf.subarray(start, end)),
        result: id < 0 ? "miss" : "hit",
      });
    }
    return id;
  }

  /**
   * A command named `POST` or `Host:`: an HTTP request sent to this port,
   * maybe by a web page, to smuggle commands in. Redis closes at once,
   * without a reply; so does sipdir.
   */
  #crossProtocol(out: Replies): void {
    out.counters.protocolErrors++;
    out.close("an HTTP request (POST or Host:) on the Redis port");
  }

  /** `-ERR Protocol error: …`, then the connection is closed; returns where parsing stopped. */
  #protocolError(out: Replies, text: string): number {
    this.#context.resp.error(out, `ERR Protocol error: ${text}`);
    out.counters.protocolErrors++;
    out.close(`protocol error: ${text}`);
    return 0;
  }
}

/** Whether a command's name is `POST` or `Host:`, in any case (see `#crossProtocol`). */
function isCrossProtocol(buf: Uint8Array, start: number, end: number): boolean {
  const n = end - start;
  if (n === 4) {
    return (buf[start] | 0x20) === 0x70 && (buf[start + 1] | 0x20) === 0x6f &&
      (buf[start + 2] | 0x20) === 0x73 && (buf[start + 3] | 0x20) === 0x74;
  }
  return n === 5 && (buf[start] | 0x20) === 0x68 && (buf[start + 1] | 0x20) === 0x6f &&
    (buf[start + 2] | 0x20) === 0x73 && (buf[start + 3] | 0x20) === 0x74 &&
    buf[start + 4] === 0x3a;
}
