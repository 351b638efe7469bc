/**
 * Test helpers: temporary data files, a line-protocol client, the server
 * process with the compile task's permissions.
 *
 * @module
 */

import { assertEquals } from "./assert.ts";
import { generateRegistrations } from "../bench/gen_regs.ts";
import type { Directory } from "../lib/directory.ts";
import { loadDirectory } from "../lib/load.ts";
import { serve, type ServeOptions, type Server } from "../lib/server.ts";

export { seededRandom } from "../bench/gen_regs.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Writes `content` to a new temporary file; returns its path. */
export async function tempFile(content: string | Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "sipdir-test-" });
  await Deno.writeFile(path, typeof content === "string" ? encoder.encode(content) : content);
  return path;
}

/** Loads a directory from JSON Lines text. */
export async function directoryOf(text: string): Promise<Directory> {
  const path = await tempFile(text);
  try {
    return (await loadDirectory({ path })).directory;
  } finally {
    await Deno.remove(path);
  }
}

/** A JSON Lines record for `aor`, with some payload. */
export function record(aor: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ addressOfRecord: aor, contact: `<sip:${aor}@10.0.0.1>`, ...extra });
}

/** A client of the line protocol. */
export class LineClient {
  readonly conn: Deno.TcpConn;
  #buf = new Uint8Array(0);
  #eof = false;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects to 127.0.0.1:`port`. */
  static async connect(port: number): Promise<LineClient> {
    return new LineClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Sends all of `data`. */
  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let done = 0;
    while (done < bytes.length) done += await this.conn.write(bytes.subarray(done));
  }

  /** Reads exactly `n` lines (without their `\n`); throws on early EOF. */
  async lines(n: number): Promise<string[]> {
    const out: string[] = [];
    let start = 0;
    while (out.length < n) {
      const lf = this.#buf.indexOf(0x0a, start);
      if (lf >= 0) {
        out.push(decoder.decode(this.#buf.subarray(start, lf)));
        start = lf + 1;
        continue;
      }
      this.#buf = this.#buf.slice(start);
      start = 0;
      if (!await this.#fill()) {
        throw new Error(`connection closed after ${out.length} of ${n} lines`);
      }
    }
    this.#buf = this.#buf.slice(start);
    return out;
  }

  /** Reads one line. */
  async line(): Promise<string> {
    return (await this.lines(1))[0];
  }

  /** Reads until the server closes; returns the bytes not yet consumed. A reset counts as closed. */
  async rest(): Promise<Uint8Array> {
    while (await this.#fill());
    const rest = this.#buf;
    this.#buf = new Uint8Array(0);
    return rest;
  }

  /** Resolves once the server has closed the connection. */
  async closed(): Promise<void> {
    await this.rest();
  }

  /** Half-closes: no more requests. */
  async closeWrite(): Promise<void> {
    await this.conn.closeWrite();
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(64 * 1024);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionReset) n = null;
      else throw error;
    }
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const joined = new Uint8Array(this.#buf.length + n);
    joined.set(this.#buf);
    joined.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = joined;
    return true;
  }
}

/** The runtime flags (permissions, V8 flags) that `deno task compile` bakes into the binary. */
export async function compileFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  return runtimeFlags(config.tasks.compile);
}

/** The `--allow-*`, `--deny-*` and `--v8-flags` flags of a deno command line. */
export function runtimeFlags(command: string): string[] {
  return command.split(/\s+/).filter((arg) => /^--(allow-|deny-|v8-flags=)/.test(arg));
}

/** A sipdir process started like the compiled binary would run. */
export class SipdirProcess {
  readonly child: Deno.ChildProcess;
  readonly #stderr: ReadableStreamDefaultReader<string>;
  /** The `--log` file, when one was given. */
  readonly #logFile: string | undefined;
  /** Everything it wrote to stderr so far. */
  stderr = "";

  constructor(child: Deno.ChildProcess, logFile?: string) {
    this.child = child;
    this.#logFile = logFile;
    this.#stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * Starts `main.ts` with the compile task's permissions and `args`.
   * `shell` wraps the command, e.g. to set `ulimit`.
   */
  static async start(args: string[], options: { shell?: string } = {}): Promise<SipdirProcess> {
    const deno = [Deno.execPath(), "run", ...await compileFlags(), mainPath(), ...args];
    const command = options.shell === undefined
      ? new Deno.Command(deno[0], { args: deno.slice(1), stdout: "piped", stderr: "piped" })
      : new Deno.Command("sh", {
        args: ["-c", `${options.shell}; exec "$@"`, "sh", ...deno],
        stdout: "piped",
        stderr: "piped",
      });
    const log = args.findIndex((arg) => arg === "-l" || arg === "--log");
    return new SipdirProcess(command.spawn(), log >= 0 ? args[log + 1] : undefined);
  }

  /**
   * Reads stderr until `pattern` matches it (in what came after offset
   * `from`); returns the match.
   */
  async waitFor(pattern: RegExp, timeout = 20_000, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const match = this.stderr.slice(from).match(pattern);
      if (match) return match;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} in stderr:\n${this.stderr}`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<null>((resolve) =>
        timer = setTimeout(() => resolve(null), left)
      );
      const chunk = await Promise.race([this.#stderr.read(), timedOut]);
      clearTimeout(timer);
      if (chunk === null) continue;
      if (chunk.done) throw new Error(`exited without ${pattern}; stderr:\n${this.stderr}`);
      this.stderr += chunk.value;
    }
  }

  /** The process's counters, as logged on SIGUSR2. */
  async counters(): Promise<Record<string, number>> {
    const from = this.stderr.length;
    this.kill("SIGUSR2");
    const match = await this.waitFor(/counters: (.*)\n/, 20_000, from);
    return Object.fromEntries(
      match[1].split(" ").map((pair) => {
        const [name, value] = pair.split("=");
        return [name, Number(value)];
      }),
    );
  }

  /** Resident memory in bytes. */
  async rss(): Promise<number> {
    const status = await Deno.readTextFile(`/proc/${this.child.pid}/status`);
    return Number(status.match(/VmRSS:\s+(\d+)/)![1]) * 1024;
  }

  /** Open file descriptors. */
  async openFiles(): Promise<number> {
    let n = 0;
    for await (const _ of Deno.readDir(`/proc/${this.child.pid}/fd`)) n++;
    return n;
  }

  /** Waits for the "listening on" log line (on stderr or in the log file); returns the port. */
  async port(timeout = 20_000): Promise<number> {
    const pattern = /listening on \S+:(\d+)/;
    if (this.#logFile === undefined) return Number((await this.waitFor(pattern, timeout))[1]);
    // The file sink flushes within a second; the program itself gives no other sign.
    for (let i = 0; i < 400; i++) {
      const match = (await Deno.readTextFile(this.#logFile)).match(pattern);
      if (match) return Number(match[1]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no ${pattern} in ${this.#logFile}`);
  }

  /** Reads the rest of stderr and waits for the exit. */
  async exit(): Promise<{ code: number; stderr: string; stdout: string }> {
    const stdout = new Response(this.child.stdout).text();
    for (;;) {
      const chunk = await this.#stderr.read();
      if (chunk.done) break;
      this.stderr += chunk.value;
    }
    const status = await this.child.status;
    return { code: status.code, stderr: this.stderr, stdout: await stdout };
  }

  kill(signal: Deno.Signal = "SIGTERM"): void {
    try {
      this.child.kill(signal);
    } catch {
      // Already exited.
    }
  }
}

/** Absolute path of main.ts. */
export function mainPath(): string {
  return new URL("../main.ts", import.meta.url).pathname;
}

/** Runs main.ts to completion with the compile task's permissions. */
export async function runSipdir(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...await compileFlags(), mainPath(), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Generated registrations for a test: the dump, its AORs and their answers. */
export class Dataset {
  readonly aors: string[];
  readonly answers: Map<string, string>;
  /** The dump, one registration a line. */
  readonly text: string;

  constructor(count: number, seed: number) {
    const generated = [...generateRegistrations({ count, seed, duplicates: 0 })];
    this.aors = generated.map((g) => g.aor);
    this.answers = new Map(generated.map((g) => [g.aor, g.line]));
    this.text = generated.map((g) => g.line).join("\n") + "\n";
  }

  /** What a request line should get back: the registration, or "" (without the `\n`). */
  answer(request: string): string {
    return this.answers.get(request.replace(/\r$/, "").replace(/^[ \t]+|[ \t]+$/g, "")) ?? "";
  }
}

/** Runs `fn` against an in-process server on a free port, over `data`; then shuts it down. */
export async function withServer(
  data: string,
  options: Partial<ServeOptions>,
  fn: (server: Server, port: number) => Promise<void>,
): Promise<void> {
  const server = serve({ directory: await directoryOf(data), port: 0, ...options });
  try {
    await fn(server, server.addr.port);
  } finally {
    await server.shutdown(500);
  }
}

/** Runs `fn` against a sipdir process serving `data` with `args`; then stops it. */
export async function withSipdir(
  data: string,
  args: string[],
  fn: (sipdir: SipdirProcess, port: number) => Promise<void>,
  options: { shell?: string } = {},
): Promise<void> {
  const path = await tempFile(data);
  const sipdir = await SipdirProcess.start(["-d", path, "-p", "0", ...args], options);
  try {
    await fn(sipdir, await sipdir.port());
  } finally {
    sipdir.kill("SIGTERM");
    await sipdir.exit();
    await Deno.remove(path);
  }
}

/** Checks a hit, a miss and a hit on a new connection: the server still serves. */
export async function assertServes(port: number, data: Dataset): Promise<void> {
  const client = await LineClient.connect(port);
  try {
    await client.send(`${data.aors[1]}\nnone\n${data.aors[2]}\n`);
    assertEquals(await client.lines(3), [data.answer(data.aors[1]), "", data.answer(data.aors[2])]);
  } finally {
    client.close();
  }
}
