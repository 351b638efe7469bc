/**
 * sipdir as a process, started exactly as the compiled binary runs (the compile task's flags).
 *
 * @module
 */

import { HUGE_PAGES_TUNABLE } from "../lib/operations/huge_pages.ts";

const decoder = new TextDecoder();

/**
 * The environment every launcher gives sipdir (the start task, the systemd
 * unit, the container image): its data on huge pages.
 */
export const LAUNCH_ENV: Readonly<Record<string, string>> = {
  GLIBC_TUNABLES: HUGE_PAGES_TUNABLE,
};

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
  /** The process. */
  readonly child: Deno.ChildProcess;
  readonly #stderr: ReadableStreamDefaultReader<string>;
  /** The `--log` file, when one was given. */
  readonly #logFile: string | undefined;
  /** Everything it wrote to stderr so far. */
  stderr = "";

  /** Wraps a started process; see {@linkcode SipdirProcess.start}. */
  constructor(child: Deno.ChildProcess, logFile?: string) {
    this.child = child;
    this.#logFile = logFile;
    this.#stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * Starts `main.ts` with the compile task's permissions, the launchers'
   * environment ({@linkcode LAUNCH_ENV}, which `env` adds to or overrides)
   * and `args`. `shell` wraps the command, e.g. to set `ulimit`. Without
   * the inspector guard unless `inspectorGuard` (see {@linkcode withoutGuard}).
   */
  static async start(
    args: string[],
    options: { shell?: string; env?: Record<string, string>; inspectorGuard?: boolean } = {},
  ): Promise<SipdirProcess> {
    const deno = [
      Deno.execPath(),
      "run",
      ...await compileFlags(),
      mainPath(),
      ...(options.inspectorGuard ? args : withoutGuard(args)),
    ];
    const env = { ...LAUNCH_ENV, ...options.env };
    const command = options.shell === undefined
      ? new Deno.Command(deno[0], { args: deno.slice(1), env, stdout: "piped", stderr: "piped" })
      : new Deno.Command("sh", {
        args: ["-c", `${options.shell}; exec "$@"`, "sh", ...deno],
        env,
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

  /**
   * Waits for the "listening on" log line (on stderr or in the log file); returns the port.
   * The first start on a fresh machine may fetch the lockfile's npm packages first, hence the
   * generous default.
   */
  async port(timeout = 60_000): Promise<number> {
    const pattern = /listening on \S+:(\d+)/;
    if (this.#logFile === undefined) return Number((await this.waitFor(pattern, timeout))[1]);
    // The file sink flushes within a second; the program itself gives no other sign.
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      const match = (await Deno.readTextFile(this.#logFile)).match(pattern);
      if (match) return Number(match[1]);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // What it said on stderr (a fetch, an error) is the useful part of the failure.
    await this.waitFor(/(?!)/, 100).catch(() => {});
    throw new Error(`no ${pattern} in ${this.#logFile}; stderr:\n${this.stderr}`);
  }

  /** Waits for the Redis port's log line; returns its port. */
  async redisPort(timeout = 60_000): Promise<number> {
    return Number((await this.waitFor(/Redis protocol on \S+:(\d+)/, timeout))[1]);
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

  /**
   * Whether the process has exited, read from `/proc` without waiting on
   * the event loop: true for a zombie (not reaped yet) and once it is gone.
   */
  exited(): boolean {
    try {
      const stat = Deno.readTextFileSync(`/proc/${this.child.pid}/stat`);
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
    } catch {
      return true;
    }
  }

  /** Sends `signal`, unless the process has exited. */
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

/**
 * `args` with `--no-inspector-guard` first. Tests start sipdir without the
 * guard: on a host where another sipdir holds 127.0.0.1:9229, each would
 * warn, and tests that read stderr would read that too. The guard's own
 * tests (the systemd test) keep it.
 */
export function withoutGuard(args: readonly string[]): string[] {
  return args.includes("--no-inspector-guard") ? [...args] : ["--no-inspector-guard", ...args];
}

/**
 * Runs main.ts to completion with the compile task's permissions and the
 * launchers' environment, without the inspector guard (see {@linkcode withoutGuard}).
 */
export async function runSipdir(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...await compileFlags(), mainPath(), ...withoutGuard(args)],
    env: { ...LAUNCH_ENV },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}
