/**
 * sipdir: serves SIP registrations from a JSON Lines dump over TCP.
 *
 * Flags → logging → load → serve → signals. Everything else is in `lib/`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { type Flags, HELP, parseFlags, USAGE, UsageError, VERSION } from "./lib/cli/flags.ts";
import { DataError, loadDirectory } from "./lib/loading/load.ts";
import { closeLogging, setupLogging } from "./lib/operations/log.ts";
import { collectGarbage } from "./lib/operations/memory.ts";
import { progressLine } from "./lib/loading/progress.ts";
import { Reloader } from "./lib/operations/reload.ts";
import { formatAddress, serve, SERVE_DEFAULTS } from "./lib/transport/server.ts";

const logger = getLogger(["sipdir"]);

/** Verbose mode logs the counters this often. */
const COUNTERS_INTERVAL = 60_000;

/**
 * Runs sipdir with the given arguments; resolves to the exit status:
 * 0 after a clean stop, 1 when the data or the address is unusable,
 * 2 for a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`sipdir: ${error.message}\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  if (flags.version) {
    console.log(`sipdir ${VERSION}`);
    return 0;
  }
  try {
    await setupLogging({ file: flags.log, verbose: flags.verbose });
  } catch (error) {
    console.error(`sipdir: cannot open log file ${flags.log}: ${(error as Error).message}`);
    return 1;
  }
  try {
    return await run(flags);
  } finally {
    await closeLogging();
  }
}

async function run(flags: Flags): Promise<number> {
  // Fatal errors also reach the terminal when the log goes to a file.
  const fatal = (message: string): number => {
    logger.fatal(message);
    if (flags.log !== undefined) console.error(`sipdir: ${message}`);
    return 1;
  };

  // A reload or counters request during a long start-up would otherwise
  // kill the process (the default action of both signals).
  const tooEarly = () => logger.warn("still loading {path}: signal ignored", { path: flags.data });
  const early: Deno.Signal[] = ["SIGHUP", "SIGUSR2"];
  for (const signal of early) Deno.addSignalListener(signal, tooEarly);
  const progress = Deno.stderr.isTerminal()
    ? progressLine({ label: flags.data, writer: Deno.stderr })
    : undefined;
  let loaded;
  try {
    loaded = await loadDirectory({ path: flags.data, onProgress: progress?.update });
  } catch (error) {
    if (error instanceof DataError) return fatal(error.message);
    throw error;
  } finally {
    progress?.clear();
    for (const signal of early) Deno.removeSignalListener(signal, tooEarly);
  }
  const { directory, report } = loaded;
  collectGarbage();
  logger.info(
    "loaded {entries} entries ({duplicates} duplicates) from {path}: {bytes} bytes in {ms} ms",
    { ...report, path: flags.data, ms: Math.round(report.ms) },
  );
  if (report.entries === 0) {
    logger.warn("{path} has no registrations: every lookup will get an empty line", {
      path: flags.data,
    });
  }

  let server;
  try {
    server = serve({
      directory,
      hostname: flags.ip,
      port: flags.port,
      idleTimeout: flags.timeout,
      maxLine: flags.maxLine,
      maxClients: flags.maxClients,
      maxPending: flags.maxPending,
    });
  } catch (error) {
    return fatal(`cannot listen on ${flags.ip}:${flags.port}: ${(error as Error).message}`);
  }
  logger.info("listening on {address}", { address: formatAddress(server.addr) });

  const reloader = new Reloader(server, flags.data);
  const logCounters = () =>
    logger.info("counters: {counters}", { counters: server.counters.format() });
  const stop = () => {
    logger.info("stopping: answering what was received, then closing {count} connection(s)", {
      count: server.connections,
    });
    server.shutdown(Math.min(SERVE_DEFAULTS.shutdownGrace, flags.timeout));
  };
  const reload = () => void reloader.request();
  const handlers: [Deno.Signal, () => void][] = [
    ["SIGTERM", stop],
    ["SIGINT", stop],
    ["SIGHUP", reload],
    // Not SIGUSR1: since 2.9.2, Deno opens a V8 inspector on 127.0.0.1:9229 on it.
    ["SIGUSR2", logCounters],
  ];
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  const ticker = flags.verbose ? setInterval(logCounters, COUNTERS_INTERVAL) : undefined;

  await server.finished;

  clearInterval(ticker);
  for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  logCounters();
  logger.info("stopped");
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
