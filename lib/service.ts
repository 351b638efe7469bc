/**
 * A running sipdir, from the parsed command line to a clean stop: guard the
 * inspector, load the data, listen, answer signals, drain.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Flags } from "./cli/flags.ts";
import { LiveDirectory } from "./directory/live.ts";
import { describe } from "./errors.ts";
import { DEFAULTS } from "./limits.ts";
import { DataError } from "./loading/load.ts";
import { progressLine } from "./loading/progress.ts";
import { WorkerLoader } from "./loading/worker_load.ts";
import { INSPECTOR_ADDRESS, keepInspectorShut } from "./operations/inspector_guard.ts";
import { glibcTunables, hugePagesAdvice } from "./operations/huge_pages.ts";
import { collectGarbage } from "./operations/memory.ts";
import { Reloader } from "./operations/reload.ts";
import { formatAddress } from "./transport/address.ts";
import { type ListenSpec, serve, type Server } from "./transport/server.ts";
import { type HttpEndpoint, serveHttp } from "./operations/http.ts";
import { formatMetrics } from "./operations/metrics.ts";
import { watchDataFile } from "./operations/watch.ts";
import { JournalFollower } from "./journal/follower.ts";
import { Counters } from "./operations/counters.ts";
import { ListenError } from "./transport/listener.ts";
import { protectedModeRefusal } from "./protocol/redis/protected_mode.ts";
import { LineProtocol } from "./protocol/line.ts";
import { RedisProtocol } from "./protocol/redis/redis.ts";
import { VERSION } from "./cli/flags.ts";

const logger = getLogger(["sipdir"]);

/** Where the service hears of signals: `Deno` itself, or what a thread relays to it. */
export interface SignalSource {
  /** Calls `handler` on each `signal` from now on. */
  addSignalListener(signal: Deno.Signal, handler: () => void): void;
  /** Stops calling `handler`. */
  removeSignalListener(signal: Deno.Signal, handler: () => void): void;
}

/** Verbose mode logs the counters this often. */
const COUNTERS_INTERVAL = 60_000;

/**
 * Runs sipdir until SIGTERM or SIGINT (from `signals`); resolves to the
 * exit status: 0 after a clean stop, 1 when the data or an address is
 * unusable. Logging must be set up by the caller.
 *
 * @example
 * ```ts ignore
 * import { parseFlags } from "./cli/flags.ts";
 * import { runService } from "./service.ts";
 * Deno.exit(await runService(parseFlags(["--port", "0"])));
 * ```
 */
export async function runService(flags: Flags, signals: SignalSource = Deno): Promise<number> {
  // Fatal errors also reach the terminal when the log goes to a file.
  const fatal = (message: string): number => {
    logger.fatal(message);
    if (flags.log !== undefined) console.error(`sipdir: ${message}`);
    return 1;
  };
  // First of all: a SIGUSR1 during a long load must not open a debugger.
  const guard = flags.inspectorGuard ? holdInspectorAddress() : undefined;
  const loader = new WorkerLoader();
  const status: Status = { counters: new Counters(), startedAt: Date.now(), stopping: false };
  let http: HttpEndpoint | undefined;
  const handlers: [Deno.Signal, () => void][] = [];
  let watcher: { close(): void } | undefined;
  // One set of handlers for the whole life, acting on the state at the time:
  // a signal must never find none (the default actions end the process).
  let stop = () => {
    // During start-up: stop loading, and exit.
    status.stopping = true;
    logger.info("stopping during start-up");
    loader.close();
  };
  const ifServing = (action: () => void) => () => {
    if (status.server === undefined) {
      logger.warn("still loading {path}: signal ignored", { path: flags.data });
    } else {
      action();
    }
  };
  const logCounters = () =>
    logger.info("counters: {counters}", { counters: status.counters.format() });
  handlers.push(
    ["SIGTERM", () => stop()],
    ["SIGINT", () => stop()],
    ["SIGHUP", ifServing(() => void status.reloader?.request())],
    // Not SIGUSR1: Deno opens its inspector on it (see inspector_guard.ts).
    ["SIGUSR2", ifServing(logCounters)],
  );
  for (const [signal, handler] of handlers) signals.addSignalListener(signal, handler);
  try {
    // Before the load, so that a dump published while it runs is seen: it is
    // reloaded as soon as the first one serves.
    watcher = flags.watch ? watchData(flags.data, status) : undefined;
    // Before the load: liveness holds during a long start-up, readiness waits for it.
    if (flags.httpPort !== undefined) {
      try {
        http = startHttp(flags, status);
      } catch (error) {
        return fatal(
          `cannot listen on ${
            formatAddress({ hostname: flags.httpIp, port: flags.httpPort })
          } (--http-port): ${describe(error)}`,
        );
      }
    }
    let password: Uint8Array | undefined;
    if (flags.redisPasswordFile !== undefined) {
      try {
        password = await readPassword(flags.redisPasswordFile);
      } catch (error) {
        return fatal(
          `cannot read the Redis password from ${flags.redisPasswordFile}: ${describe(error)}`,
        );
      }
    }
    let live: LiveDirectory;
    try {
      live = await loadLive(flags, loader, status);
    } catch (error) {
      if (status.stopping) {
        logger.info("stopped");
        return 0;
      }
      if (error instanceof DataError) return fatal(error.message);
      throw error;
    }
    if (flags.journal !== undefined) {
      // Before listening: the first answers already include the journal's changes.
      status.journal = new JournalFollower({
        path: flags.journal,
        live,
        counters: status.counters,
      });
      await status.journal.start(status.loadedSequence ?? 0);
      logger.info("following the journal {path}: applied up to sequence {sequence}", {
        path: flags.journal,
        sequence: status.journal.applied,
      });
    }
    status.live = live;
    let server: Server;
    try {
      server = listen(flags, status, password);
    } catch (error) {
      if (error instanceof ListenError) return fatal(error.message);
      throw error;
    }
    status.server = server;
    status.reloader = new Reloader({
      live,
      counters: status.counters,
      path: flags.data,
      minRatio: flags.reloadMinRatio,
      load: (path) => loader.load({ path, background: true }),
      prepare: status.journal === undefined
        ? undefined
        : (loaded) => status.journal!.prepare(loaded.directory, loaded.report.sequence),
    });
    stop = () => {
      // Not ready from now on: load balancers stop sending clients here.
      status.stopping = true;
      logger.info("stopping: answering what was received, then closing {count} connection(s)", {
        count: server.connections,
      });
      server.shutdown(Math.min(DEFAULTS.shutdownGrace, flags.timeout));
    };
    // A SIGTERM during start-up, after the load: stop now.
    if (status.stopping) stop();
    const ticker = flags.verbose ? setInterval(logCounters, COUNTERS_INTERVAL) : undefined;
    // A dump published while the first one loaded (the watcher saw it).
    if (status.reloadPending) void status.reloader.request();
    await server.finished;

    clearInterval(ticker);
    logCounters();
    logger.info("stopped");
    return 0;
  } finally {
    status.journal?.close();
    watcher?.close();
    await http?.shutdown();
    loader.close();
    guard?.close();
    // Last: a second SIGTERM while stopping must not kill the process.
    for (const [signal, handler] of handlers) signals.removeSignalListener(signal, handler);
  }
}

/** What the operations endpoints report, filled in as sipdir starts. */
interface Status {
  counters: Counters;
  startedAt: number;
  live?: LiveDirectory;
  server?: Server;
  reloader?: Reloader;
  /** SIGTERM or SIGINT arrived. */
  stopping: boolean;
  /** The data file changed before the reloader existed: reload once it does. */
  reloadPending?: boolean;
  /** The sequence number the first dump declared. */
  loadedSequence?: number;
  /** `--journal`'s follower. */
  journal?: JournalFollower;
}

/** `--watch`: reloads the data file once it changed and is complete. */
function watchData(path: string, status: Status): { close(): void } {
  return watchDataFile({
    path,
    onChange: () => {
      if (status.reloader === undefined) status.reloadPending = true;
      else void status.reloader.request();
    },
    onMissing: () =>
      logger.warn("{path} is gone: still serving the data loaded from it, until it is back", {
        path,
      }),
    onWriting: () =>
      logger.info("{path} is being written in place: reloading once its writer closes it", {
        path,
      }),
  });
}

/** Serves /metrics, /healthz and /readyz from `status`. */
function startHttp(flags: Flags, status: Status): HttpEndpoint {
  const ready = () => status.server !== undefined && !status.stopping;
  const http = serveHttp({
    hostname: flags.httpIp,
    port: flags.httpPort!,
    ready,
    metrics: () =>
      formatMetrics({
        counters: status.counters,
        live: status.live,
        lastReload: status.reloader?.lastReload,
        version: VERSION,
        startedAt: status.startedAt,
        maxClients: flags.maxClients,
        ready: ready(),
        clientMemory: status.server?.clientMemory,
        maxClientMemory: flags.maxClientMemory,
        journal: status.journal,
      }),
  });
  logger.info("HTTP (/metrics, /healthz, /readyz) on {address}", {
    address: formatAddress(http.addr),
  });
  return http;
}

/** Listens on the line port and, if asked, the Redis port; logs where. */
function listen(flags: Flags, status: Status, password: Uint8Array | undefined): Server {
  const specs: ListenSpec[] = [{
    port: flags.port,
    protocol: new LineProtocol({ maxLine: flags.maxLine, bareWait: flags.bareWait }),
  }];
  const protectedMode = flags.protectedMode && password === undefined;
  if (flags.redisPort !== undefined) {
    specs.push({
      hostname: flags.redisIp,
      port: flags.redisPort,
      // As Redis keeps them: a client's idle connection stays open (keepalive
      // finds a vanished peer); only one stalled mid-command times out.
      idleTimeout: flags.redisTimeout,
      stallTimeout: flags.timeout,
      keepAlive: true,
      refuse: protectedMode ? protectedModeRefusal : undefined,
      protocol: new RedisProtocol({
        maxArgument: flags.maxLine,
        maxArguments: flags.redisMaxArguments,
        maxCommand: flags.redisMaxCommand,
        password,
        info: {
          version: VERSION,
          connectedClients: () => status.server?.connections ?? 0,
          uptimeSeconds: () => (Date.now() - status.startedAt) / 1000,
          port: () => status.server?.addrs.get("redis")?.port ?? 0,
        },
      }),
    });
  }
  const server = serve({
    directory: status.live!,
    hostname: flags.ip,
    listen: specs,
    idleTimeout: flags.timeout,
    maxClients: flags.maxClients,
    maxPending: flags.maxPending,
    maxClientMemory: flags.maxClientMemory,
    counters: status.counters,
  });
  logger.info("listening on {address}", { address: formatAddress(server.addr) });
  const redisAddress = server.addrs.get("redis");
  if (redisAddress) {
    logger.info("Redis protocol on {address}, AUTH {auth}{mode}", {
      address: formatAddress(redisAddress),
      auth: password === undefined ? "not required" : "required",
      mode: protectedMode ? ", protected mode: loopback clients only" : "",
    });
  }
  return server;
}

/** Holds the inspector's address, retrying while something else holds it, and says so. */
function holdInspectorAddress(): { close(): void } {
  const address = formatAddress(INSPECTOR_ADDRESS);
  return keepInspectorShut({
    onTaken: (error) =>
      logger.warn(
        "cannot hold {address} ({error}), trying again every 10 s: while nothing else holds " +
          "it, a SIGUSR1 opens Deno's debugger there",
        { address, error: describe(error) },
      ),
    onHeld: () => logger.info("now holding {address} against the SIGUSR1 debugger", { address }),
  });
}

/**
 * Loads the data file on a worker thread into a new {@linkcode LiveDirectory}
 * and logs the result. Its own function, so that no frame that lives as long
 * as the server keeps the first directory alive after a reload replaced it.
 */
async function loadLive(
  flags: Flags,
  loader: WorkerLoader,
  status: Status,
): Promise<LiveDirectory> {
  const progress = Deno.stderr.isTerminal()
    ? progressLine({ label: flags.data, writer: Deno.stderr })
    : undefined;
  try {
    const { directory, report } = await loader.load({
      path: flags.data,
      onProgress: progress?.update,
    });
    progress?.clear();
    collectGarbage();
    status.loadedSequence = report.sequence;
    logger.info(
      "loaded {entries} entries ({duplicates} duplicates) from {path}: {bytes} bytes in {ms} ms",
      { ...report, path: flags.data, ms: Math.round(report.ms) },
    );
    if (report.entries === 0) {
      logger.warn("{path} has no registrations: every lookup will get an empty line", {
        path: flags.data,
      });
    }
    const advice = hugePagesAdvice(glibcTunables(), directory.byteLength);
    if (advice !== undefined) logger.warn(advice);
    return new LiveDirectory(directory);
  } finally {
    progress?.clear();
  }
}

/**
 * The password in `path`: the file's bytes, without a final line end (what
 * `echo secret > file` adds). Refuses an empty one.
 */
async function readPassword(path: string): Promise<Uint8Array> {
  let bytes = await Deno.readFile(path);
  if (bytes.at(-1) === 0x0a) bytes = bytes.subarray(0, bytes.at(-2) === 0x0d ? -2 : -1);
  if (bytes.length === 0) throw new Error("the file is empty");
  return bytes;
}
