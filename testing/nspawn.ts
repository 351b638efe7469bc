/**
 * Throwaway Debian systems booted with systemd-nspawn, for tests that need a
 * real systemd: build (and cache) a Debian root with debootstrap, boot an
 * overlay of it, run commands inside with nsenter, stop it.
 *
 * Needs root, `systemd-nspawn` (Debian: systemd-container), `debootstrap`
 * and `nsenter` (util-linux). The cached root lives outside the clone, under
 * {@linkcode CACHE_DIR}; it is never modified: each boot writes to a tmpfs
 * overlay (`--volatile=overlay`) that is gone when the container stops.
 *
 * ```ts ignore
 * const root = await ensureRootfs();
 * const container = await Container.boot({ root: root.path });
 * try {
 *   console.log((await container.exec(["systemctl", "is-system-running"])).stdout);
 * } finally {
 *   await container.stop();
 * }
 * ```
 *
 * @module
 */

import { compileFlags } from "./sipdir_process.ts";

/** Where built roots are cached: outside any clone, kept across runs. */
export const CACHE_DIR = "/var/tmp/sipdir-systemd";

/** The Debian release and mirror the cached root is built from. */
export const DEBIAN = { suite: "bookworm", mirror: "http://deb.debian.org/debian" } as const;

/** The packages added to debootstrap's minbase: just enough to boot systemd. */
export const ROOTFS_PACKAGES = ["systemd", "systemd-sysv", "dbus"] as const;

/** The debootstrap command line that builds a root into `dir`. */
export function debootstrapCommand(dir: string): string[] {
  return [
    "debootstrap",
    "--variant=minbase",
    `--include=${ROOTFS_PACKAGES.join(",")}`,
    DEBIAN.suite,
    dir,
    DEBIAN.mirror,
  ];
}

/** A command's outcome. */
export interface CommandResult {
  /** Exit status (128 + signal number when killed by a signal). */
  code: number;
  /** What it wrote to stdout. */
  stdout: string;
  /** What it wrote to stderr. */
  stderr: string;
}

/** Options of {@linkcode run}. */
export interface RunOptions {
  /** Written to the command's stdin, which is then closed. */
  stdin?: string | Uint8Array;
  /** The command is killed (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  /** Environment; the command gets only this (plus a standard PATH), unless `inheritEnv`. */
  env?: Record<string, string>;
  /** Also pass this process's environment (certificates, proxies …) on. */
  inheritEnv?: boolean;
  /** Working directory. */
  cwd?: string;
}

/** A standard PATH for commands run here and in containers. */
export const STANDARD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * Runs `argv` to completion and collects its output; kills it when it
 * outlives `timeoutMs`, and then rejects with what it printed so far.
 */
export async function run(
  argv: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const child = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    clearEnv: !options.inheritEnv,
    env: options.inheritEnv
      ? options.env
      : { PATH: STANDARD_PATH, LANG: "C.UTF-8", ...options.env },
    cwd: options.cwd,
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killCommand(child.pid);
  }, timeoutMs);
  try {
    if (options.stdin !== undefined) {
      const writer = child.stdin.getWriter();
      await writer.write(
        typeof options.stdin === "string" ? new TextEncoder().encode(options.stdin) : options.stdin,
      );
      await writer.close();
    }
    const [stdout, stderr, status] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.status,
    ]);
    if (timedOut) {
      throw new Error(
        `timed out after ${timeoutMs} ms: ${
          argv.join(" ")
        }\nstdout:\n${stdout}\nstderr:\n${stderr}`,
      );
    }
    return { code: status.code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * SIGKILL to what `pid` runs: to its children when it has any (nsenter forks
 * to enter a PID namespace: killed, the child is reaped by nsenter, which then
 * exits; killing nsenter first would leave the child to the host's init, and
 * the container's shutdown waits for that zombie), else to `pid` itself.
 */
function killCommand(pid: number): void {
  let children: string[] = [];
  try {
    children = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/);
  } catch {
    // Gone already, or no such file: kill the process itself.
  }
  const targets = children.filter(Boolean).map(Number);
  for (const target of targets.length > 0 ? targets : [pid]) {
    try {
      Deno.kill(target, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/** Like {@linkcode run}, but rejects unless the command exits 0. */
export async function runOk(argv: readonly string[], options: RunOptions = {}): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    throw new Error(
      `${
        argv.join(" ")
      } exited ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return result.stdout;
}

/** Finds `name` on the standard PATH; undefined when absent. */
export async function which(name: string): Promise<string | undefined> {
  for (const dir of STANDARD_PATH.split(":")) {
    try {
      const info = await Deno.stat(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) return `${dir}/${name}`;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * Throws one error naming everything missing to boot containers: root, and
 * the `systemd-nspawn`, `debootstrap` and `nsenter` commands (with the Debian
 * packages that have them).
 */
export async function checkPrerequisites(): Promise<void> {
  const problems: string[] = [];
  if (Deno.uid() !== 0) problems.push(`must run as root (uid is ${Deno.uid()})`);
  const commands: [string, string][] = [
    ["systemd-nspawn", "systemd-container"],
    ["debootstrap", "debootstrap"],
    ["nsenter", "util-linux"],
  ];
  for (const [command, pkg] of commands) {
    if (await which(command) === undefined) {
      problems.push(`${command} not found (Debian package ${pkg})`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`cannot boot systemd containers: ${problems.join("; ")}`);
  }
}

/** A root file system ready to boot. */
export interface Rootfs {
  /** Its directory. */
  path: string;
  /** True when this call built it (cold cache). */
  built: boolean;
  /** How long the build took, 0 when it was cached. */
  buildMs: number;
}

/** Options of {@linkcode ensureRootfs}. */
export interface EnsureRootfsOptions {
  /** Cache directory; default {@linkcode CACHE_DIR}. */
  cacheDir?: string;
  /** Gives up on debootstrap after this long; default 15 minutes. */
  timeoutMs?: number;
  /** Progress messages. */
  log?: (message: string) => void;
}

/** Where {@linkcode ensureRootfs} keeps the root in `cacheDir`. */
export function rootfsPath(cacheDir: string = CACHE_DIR): string {
  return `${cacheDir}/rootfs-${DEBIAN.suite}-minbase`;
}

/** A root is complete when systemd is in it; only complete roots are renamed into place. */
async function isBootable(root: string): Promise<boolean> {
  try {
    return (await Deno.stat(`${root}/usr/lib/systemd/systemd`)).isFile;
  } catch {
    return false;
  }
}

/**
 * Returns the cached Debian root, building it first when it is missing.
 *
 * The build runs debootstrap ({@linkcode debootstrapCommand}) into a fresh
 * directory beside the cache and renames it into place only once it has
 * succeeded, so that a killed build never leaves a half root where a later
 * run would take it for a whole one. Leftovers of killed builds (their
 * builder's pid is gone) are removed.
 */
export async function ensureRootfs(options: EnsureRootfsOptions = {}): Promise<Rootfs> {
  const cacheDir = options.cacheDir ?? CACHE_DIR;
  const path = rootfsPath(cacheDir);
  if (await isBootable(path)) return { path, built: false, buildMs: 0 };
  await Deno.mkdir(cacheDir, { recursive: true });
  await removeStaleBuilds(cacheDir);
  const started = Date.now();
  const building = await Deno.makeTempDir({
    dir: cacheDir,
    prefix: `${path.slice(cacheDir.length + 1)}.building-${Deno.pid}-`,
  });
  try {
    options.log?.(`building ${path} with debootstrap (takes a minute or two)`);
    await runOk(debootstrapCommand(building), { timeoutMs: options.timeoutMs ?? 15 * 60_000 });
    if (!await isBootable(building)) throw new Error(`debootstrap left no systemd in ${building}`);
    // makeTempDir made it 0700; a root directory is 0755.
    await Deno.chmod(building, 0o755);
    try {
      await Deno.rename(building, path);
    } catch (error) {
      // Another run finished first: use its root.
      if (!await isBootable(path)) throw error;
      options.log?.(`${path} appeared meanwhile; using it`);
      return { path, built: false, buildMs: 0 };
    }
    return { path, built: true, buildMs: Date.now() - started };
  } finally {
    await Deno.remove(building, { recursive: true }).catch(() => {});
  }
}

/** Removes build directories whose builder process no longer exists. */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  for await (const entry of Deno.readDir(cacheDir)) {
    const match = entry.name.match(/\.building-(\d+)-/);
    if (!match || !entry.isDirectory) continue;
    if (await exists(`/proc/${match[1]}`)) continue;
    await Deno.remove(`${cacheDir}/${entry.name}`, { recursive: true }).catch(() => {});
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** A host path bind-mounted into a container. */
export interface Bind {
  /** Path on the host. */
  host: string;
  /** Path in the container. */
  container: string;
  /** Read-only; default true. */
  readOnly?: boolean;
}

/** Options of {@linkcode Container.boot}. */
export interface BootOptions {
  /** The root to boot (left untouched: the container writes to a tmpfs overlay). */
  root: string;
  /** Bind mounts. */
  binds?: readonly Bind[];
  /** Gives up when systemd is not up after this long; default 60 s. */
  timeoutMs?: number;
}

/**
 * What processes write, read as it comes (in the background, so that a
 * writer never blocks on a full pipe), with a way to wait for a pattern in it.
 * Offsets ({@linkcode FollowedOutput.mark}) let a wait look only at what came
 * after an action.
 */
export class FollowedOutput {
  /** Everything read so far. */
  text = "";
  /** Resolves when every stream has ended. */
  readonly finished: Promise<void>;
  #done = false;
  #changed = Promise.withResolvers<void>();

  /** Starts collecting `streams`. */
  constructor(streams: readonly ReadableStream<Uint8Array>[]) {
    this.finished = Promise.all(streams.map((stream) => this.#pump(stream))).then(() => {
      this.#done = true;
      this.#notify();
    });
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of stream) {
        this.text += decoder.decode(chunk, { stream: true });
        this.#notify();
      }
    } catch {
      // A broken pipe ends the stream like an end of file.
    }
  }

  #notify(): void {
    const changed = this.#changed;
    this.#changed = Promise.withResolvers<void>();
    changed.resolve();
  }

  /** The current end of the text: pass it as `from` to wait for what comes next. */
  mark(): number {
    return this.text.length;
  }

  /**
   * Resolves to the first match of `pattern` in the text after offset `from`;
   * rejects after `timeoutMs`, or at the end of the streams, with `what` and
   * the text read after `from`.
   */
  async waitFor(
    pattern: RegExp,
    options: { from?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<RegExpMatchArray> {
    const from = options.from ?? 0;
    const timeoutMs = options.timeoutMs ?? 20_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = this.text.slice(from).match(pattern);
      if (match) return match;
      const left = deadline - Date.now();
      if (this.#done || left <= 0) {
        const why = this.#done ? "output ended" : `timed out after ${timeoutMs} ms`;
        throw new Error(
          `${why} waiting for ${options.what ?? String(pattern)}; read:\n${this.text.slice(from)}`,
        );
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<void>((resolve) => timer = setTimeout(resolve, left));
      await Promise.race([this.#changed.promise, timedOut]);
      clearTimeout(timer);
    }
  }
}

/** A process started inside a container, whose output can be followed. */
export interface FollowedProcess {
  /** Its stdout, as it comes. */
  output: FollowedOutput;
  /** Kills it and waits for it to end. */
  stop(): Promise<void>;
}

/**
 * A booted container: systemd as its PID 1, in its own PID, mount, IPC, UTS
 * and network namespaces. Start one with {@linkcode Container.boot}; always
 * {@linkcode Container.stop} it.
 */
export class Container {
  /** The machine name (also its host name). */
  readonly name: string;
  /** The systemd-nspawn process. */
  readonly #nspawn: Deno.ChildProcess;
  /** The container's PID 1 (its systemd), as a host pid. */
  readonly leader: number;
  /** What nspawn printed: the container's console. */
  readonly console: FollowedOutput;
  readonly #followers = new Set<FollowedProcess>();
  #stopped = false;

  private constructor(
    name: string,
    nspawn: Deno.ChildProcess,
    leader: number,
    console: FollowedOutput,
  ) {
    this.name = name;
    this.#nspawn = nspawn;
    this.leader = leader;
    this.console = console;
  }

  /** The systemd-nspawn command line {@linkcode Container.boot} runs. */
  static async command(name: string, options: BootOptions): Promise<string[]> {
    return [
      "systemd-nspawn",
      "--quiet",
      "--boot",
      // No machined: commands go in through nsenter, by pid.
      "--register=no",
      // Without a systemd on the host there is no bus to ask for a scope.
      ...(await exists("/run/systemd/system") ? [] : ["--keep-unit"]),
      // The root stays as it is: every write goes to a tmpfs, gone at stop.
      "--volatile=overlay",
      // Only loopback: nothing the container does reaches the host's ports.
      "--private-network",
      `--machine=${name}`,
      `--directory=${options.root}`,
      ...(options.binds ?? []).map((bind) =>
        `--bind${bind.readOnly === false ? "" : "-ro"}=${bind.host}:${bind.container}`
      ),
    ];
  }

  /**
   * Boots `options.root` and resolves once its systemd reports the system
   * up (`systemctl is-system-running --wait`: running or degraded).
   */
  static async boot(options: BootOptions): Promise<Container> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    const name = `sipdir-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const argv = await Container.command(name, options);
    const nspawn = new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      clearEnv: true,
      env: { PATH: STANDARD_PATH, LANG: "C.UTF-8", SYSTEMD_COLORS: "0" },
    }).spawn();
    const output = new FollowedOutput([nspawn.stdout, nspawn.stderr]);
    let leader: number | undefined;
    try {
      leader = await findLeader(nspawn, deadline);
      const container = new Container(name, nspawn, leader, output);
      // systemctl needs systemd's private socket; nothing announces it.
      while (!await exists(`/proc/${leader}/root/run/systemd/private`)) {
        if (Date.now() > deadline) throw new Error("systemd opened no control socket in time");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const state = await container.exec(["systemctl", "is-system-running", "--wait"], {
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
      if (!/^(running|degraded)\s*$/.test(state.stdout)) {
        throw new Error(`systemd in the container is ${state.stdout.trim() || state.stderr}`);
      }
      return container;
    } catch (error) {
      await stopProcesses(nspawn, leader, 10_000);
      await output.finished;
      await removePropagationDir(name);
      throw new Error(`booting ${options.root} failed: ${error}\nconsole:\n${output.text}`);
    }
  }

  /** `nsenter` into all of the container's namespaces, then `argv`. */
  #nsenter(argv: readonly string[], namespaces: "all" | "net"): string[] {
    return [
      "nsenter",
      `--target=${this.leader}`,
      ...(namespaces === "all" ? ["--all"] : ["--net"]),
      "--",
      ...argv,
    ];
  }

  /**
   * Runs `argv` inside the container (all its namespaces, its root), as root.
   * (nsenter forks to enter the PID namespace: systemd refuses clients whose
   * pid it cannot see.)
   */
  exec(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    return run(this.#nsenter(argv, "all"), options);
  }

  /** Runs `argv` inside the container; rejects unless it exits 0; resolves to its stdout. */
  execOk(argv: readonly string[], options: RunOptions = {}): Promise<string> {
    return runOk(this.#nsenter(argv, "all"), options);
  }

  /** Runs a `sh -c` script inside the container; rejects unless it exits 0. */
  sh(script: string, options: RunOptions = {}): Promise<string> {
    return this.execOk(["sh", "-ec", script], options);
  }

  /**
   * Runs a host program in the container's network namespace only: it sees
   * the container's loopback (and the host's files, not the container's). It
   * gets the caller's environment unless `inheritEnv: false`.
   */
  execInNetwork(argv: readonly string[], options: RunOptions = {}): Promise<CommandResult> {
    return run(this.#nsenter(argv, "net"), { inheritEnv: true, ...options });
  }

  /** Writes `content` to `path` inside the container (as root, mode 0644). */
  async writeFile(path: string, content: string | Uint8Array): Promise<void> {
    await this.execOk(["sh", "-ec", 'cat > "$1"; chmod 0644 "$1"', "sh", path], {
      stdin: content,
    });
  }

  /**
   * Starts `argv` inside the container and follows its stdout, e.g.
   * `journalctl -f`; {@linkcode Container.stop} also stops it. With
   * `network: true`, `argv` is a host program run in the container's network
   * namespace only (as {@linkcode Container.execInNetwork}).
   */
  follow(argv: readonly string[], options: { network?: boolean } = {}): FollowedProcess {
    const full = this.#nsenter(argv, options.network ? "net" : "all");
    const child = new Deno.Command(full[0], {
      args: full.slice(1),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      // A host program (network only) gets the caller's environment (its DENO_DIR …).
      clearEnv: !options.network,
      env: options.network ? { NO_COLOR: "1" } : { PATH: STANDARD_PATH, SYSTEMD_COLORS: "0" },
    }).spawn();
    const output = new FollowedOutput([child.stdout]);
    const followers = this.#followers;
    const followed: FollowedProcess = {
      output,
      async stop() {
        followers.delete(followed);
        killCommand(child.pid);
        await child.status;
        await output.finished;
      },
    };
    followers.add(followed);
    return followed;
  }

  /**
   * Shuts the container down: SIGTERM to nspawn (a clean poweroff), SIGKILL to
   * it and the container's PID 1 if that takes longer than `timeoutMs`; then
   * removes what nspawn left on the host. Safe to call twice.
   */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const follower of [...this.#followers]) await follower.stop();
    await stopProcesses(this.#nspawn, this.leader, timeoutMs);
    await this.console.finished;
    await removePropagationDir(this.name);
  }
}

/** The container's PID 1: nspawn's child, once it has become systemd. */
async function findLeader(nspawn: Deno.ChildProcess, deadline: number): Promise<number> {
  let exited = false;
  nspawn.status.then(() => exited = true);
  for (;;) {
    if (exited) throw new Error("systemd-nspawn exited");
    const children = await Deno.readTextFile(`/proc/${nspawn.pid}/task/${nspawn.pid}/children`)
      .catch(() => "");
    for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
      const exe = await Deno.readLink(`/proc/${pid}/exe`).catch(() => "");
      if (/\/systemd$/.test(exe)) return Number(pid);
    }
    if (Date.now() > deadline) throw new Error("no systemd in the container in time");
    // No event tells when the child has exec'd systemd: poll, briefly.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Ends nspawn: SIGTERM (it powers the container off cleanly), then, past the
 * deadline, SIGKILL to it and to the container's PID 1 (which takes the rest
 * of the container with it).
 */
async function stopProcesses(
  nspawn: Deno.ChildProcess,
  leader: number | undefined,
  timeoutMs: number,
): Promise<void> {
  const signal = (pid: number, sig: Deno.Signal) => {
    try {
      Deno.kill(pid, sig);
    } catch {
      // Already gone.
    }
  };
  signal(nspawn.pid, "SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((resolve) =>
    timer = setTimeout(() => resolve("timeout"), timeoutMs)
  );
  const result = await Promise.race([nspawn.status, timedOut]);
  clearTimeout(timer);
  if (result === "timeout") {
    if (leader !== undefined) signal(leader, "SIGKILL");
    signal(nspawn.pid, "SIGKILL");
    await nspawn.status;
  }
}

/** nspawn's per-machine directory on the host, which it sometimes leaves behind. */
async function removePropagationDir(name: string): Promise<void> {
  await Deno.remove(`/run/systemd/nspawn/propagate/${name}`, { recursive: true }).catch(() => {});
}

/** Where the sipdir stand-in finds its parts inside a container. */
export const SIPDIR_MOUNTS = {
  /** The host's deno binary. */
  deno: "/opt/sipdir-test/bin/deno",
  /** The source tree (read-only). */
  source: "/opt/sipdir-test/src",
  /** A DENO_DIR holding the npm packages the source imports (read-only). */
  denoDir: "/opt/sipdir-test/deno-dir",
} as const;

/**
 * Fills a new DENO_DIR with what `main.ts` and its worker import (the npm
 * packages pinned in deno.lock), readable by every user; returns its path.
 * Deno needs no write access to it: it then keeps its caches in memory.
 */
export async function prepareDenoDir(sourceDir: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "sipdir-nspawn-deno-dir-" });
  try {
    await runOk([Deno.execPath(), "cache", "--quiet", "main.ts", "lib/loading/load_worker.ts"], {
      cwd: sourceDir,
      // The caller's environment may hold what reaches the npm registry (CA files, proxies).
      env: { DENO_DIR: dir, NO_COLOR: "1" },
      inheritEnv: true,
      timeoutMs: 120_000,
    });
    // makeTempDir's 0700 would keep the service's dynamic user out.
    await runOk(["chmod", "-R", "a+rX", dir]);
    return dir;
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * The bind mounts for {@linkcode sipdirStandIn}: the host's deno binary, the
 * source tree and a DENO_DIR (see {@linkcode prepareDenoDir}).
 */
export function sipdirBinds(sourceDir: string, denoDir: string): Bind[] {
  return [
    { host: Deno.execPath(), container: SIPDIR_MOUNTS.deno },
    { host: sourceDir, container: SIPDIR_MOUNTS.source },
    { host: denoDir, container: SIPDIR_MOUNTS.denoDir },
  ];
}

/**
 * The stand-in for the compiled binary, to install as
 * `/usr/local/bin/sipdir`: a script that execs the bind-mounted deno on the
 * bind-mounted `main.ts` with exactly the runtime flags of the compile task
 * (permissions, V8 flags), so that it runs as the binary would, as the same
 * process (the unit's MainPID); plus `--cached-only`, since the binary
 * fetches nothing either. The environment that the binary would not need
 * (DENO_DIR) is set here, not in the unit.
 */
export async function sipdirStandIn(): Promise<string> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const argv = [
    SIPDIR_MOUNTS.deno,
    "run",
    // Not a runtime flag: the binary loads no module at run time, and this
    // keeps deno from it too. Without it, deno asks the npm registry about
    // @logtape when it starts the load worker from a source path other than
    // the one the DENO_DIR was filled from (measured): offline in the
    // container, that only adds "Download …" lines to the journal.
    "--cached-only",
    ...await compileFlags(),
    `${SIPDIR_MOUNTS.source}/main.ts`,
  ];
  return [
    "#!/bin/sh",
    "# Stand-in for the compiled sipdir: deno with the compile task's runtime flags.",
    `DENO_DIR=${quote(SIPDIR_MOUNTS.denoDir)}`,
    "export DENO_DIR",
    `exec ${argv.map(quote).join(" ")} "$@"`,
    "",
  ].join("\n");
}
