/**
 * What the tests of sipdir's Redis port with real clients share: a dataset
 * with the answers each AOR must get, a sipdir process with `--redis-port 0`,
 * external commands run with a deadline, and promises bounded in time.
 *
 * @module
 */

import { Dataset, record, SipdirProcess, tempFile } from "../helpers.ts";

const decoder = new TextDecoder();

/** AORs no dump here contains. */
export const UNKNOWN = ["unknown", "0142e2fa3543cb32bf000100620003", "key:999999999999", "ünknown"];

/** The password the tests' sipdir requires when asked to. */
export const PASSWORD = "s3cret-€-pass";

/** A dump and what each of its AORs must get back, byte for byte. */
export class RedisDataset {
  /** The AORs, in dump order. */
  readonly aors: string[];
  /** Each AOR's registration line (the dump line, already compact JSON). */
  readonly answers: Map<string, string>;
  /** The dump. */
  readonly text: string;

  /** A dataset from its lines (compact JSON, distinct AORs). */
  constructor(lines: string[]) {
    this.answers = new Map(lines.map((line) => [JSON.parse(line).addressOfRecord, line]));
    this.aors = [...this.answers.keys()];
    this.text = lines.join("\n") + "\n";
  }

  /**
   * `count` generated registrations, then one with non-ASCII text in its AOR
   * and payload (so that "equal" means equal bytes, not just equal ASCII).
   */
  static generated(count: number, seed: number): RedisDataset {
    const data = new Dataset(count, seed);
    const lines = data.aors.map((aor) => data.answers.get(aor)!);
    lines.push(record("zoë-ñandú@例え.jp", { displayName: "Zoë Ñandú ☎ 例え" }));
    return new RedisDataset(lines);
  }

  /**
   * AORs `key:000000000000` … shaped as redis-benchmark's `key:__rand_int__`
   * with `-r count` (12 digits), so that its random keys are all hits.
   */
  static benchmarkKeys(count: number): RedisDataset {
    const lines = [];
    for (let i = 0; i < count; i++) lines.push(record(`key:${String(i).padStart(12, "0")}`));
    return new RedisDataset(lines);
  }

  /** The registration for `aor`, or null when unknown: what GET must return. */
  get(aor: string): string | null {
    return this.answers.get(aor) ?? null;
  }

  /** The AOR with non-ASCII bytes (of a generated dataset). */
  get nonAscii(): string {
    return this.aors[this.aors.length - 1];
  }

  /** `n` AORs spread over the dump, the first and the last included. */
  sample(n: number): string[] {
    const step = Math.max(1, Math.floor(this.aors.length / n));
    const picked = this.aors.filter((_, i) => i % step === 0).slice(0, n - 1);
    return [...picked, this.aors[this.aors.length - 1]];
  }
}

/** A sipdir process serving a dataset, with the Redis protocol on. */
export class RedisSipdir {
  /** The process. */
  readonly process: SipdirProcess;
  /** Its Redis port. */
  readonly port: number;
  readonly #files: string[];

  private constructor(process: SipdirProcess, port: number, files: string[]) {
    this.process = process;
    this.port = port;
    this.#files = files;
  }

  /**
   * Starts sipdir on `data` with `--redis-port 0` and `args`; with
   * `password`, also `--redis-password-file`. Resolves once the Redis port
   * is logged.
   */
  static async start(
    data: RedisDataset,
    options: { args?: string[]; password?: string } = {},
  ): Promise<RedisSipdir> {
    const files = [await tempFile(data.text)];
    const args = ["-d", files[0], "-p", "0", "--redis-port", "0", "--no-inspector-guard"];
    if (options.password !== undefined) {
      files.push(await tempFile(options.password + "\n"));
      args.push("--redis-password-file", files[1]);
    }
    const process = await SipdirProcess.start([...args, ...options.args ?? []]);
    try {
      const match = await process.waitFor(/Redis protocol on 127\.0\.0\.1:(\d+)/);
      return new RedisSipdir(process, Number(match[1]), files);
    } catch (error) {
      process.kill("SIGKILL");
      await process.exit();
      for (const file of files) await Deno.remove(file);
      throw error;
    }
  }

  /** The Redis protocol's counters (`redis.hits` …), as logged on SIGUSR2. */
  async counters(): Promise<Record<string, number>> {
    return await this.process.counters();
  }

  /** Stops the process (SIGTERM, by its pid) and removes its files; returns its stderr. */
  async stop(): Promise<string> {
    this.process.kill("SIGTERM");
    const { stderr } = await this.process.exit();
    for (const file of this.#files) await Deno.remove(file).catch(() => {});
    return stderr;
  }
}

/** The result of an external command. */
export interface Ran {
  /** Exit status; null when killed at its deadline. */
  code: number | null;
  /** Standard output, as bytes. */
  bytes: Uint8Array;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/**
 * Runs `command` with `args` (and `stdin`), killed after `timeoutMs`. Throws,
 * naming the Debian package, when the command is not installed.
 */
export async function run(
  command: string,
  args: string[],
  options: { stdin?: string; timeoutMs?: number; debianPackage?: string } = {},
): Promise<Ran> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command, {
      args,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    const from = options.debianPackage ? ` (Debian: ${options.debianPackage})` : "";
    throw new Error(`cannot run ${command}${from}: ${error}`);
  }
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Exited meanwhile.
    }
  }, options.timeoutMs ?? 60_000);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    }
    const output = await child.output();
    return {
      code: killed ? null : output.code,
      bytes: output.stdout,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    };
  } finally {
    clearTimeout(timer);
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the arguments of the next `event` of `emitter`. */
export function once(
  emitter: { once(event: string, listener: (...args: unknown[]) => void): unknown },
  event: string,
): Promise<unknown[]> {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}
