/**
 * The serving thread: the whole service (data, listeners, reloads, HTTP)
 * runs here, in a runtime created with few events per epoll pass (see
 * `serving_thread.ts`). It is started by `serveOnThread`; `deno compile`
 * must embed it (`--include`), as it is not imported statically.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { getLogger } from "@logtape/logtape";
import { parseFlags } from "./cli/flags.ts";
import { closeLogging, setupLogging } from "./operations/log.ts";
import { runService, type SignalSource } from "./service.ts";
import { describe } from "./errors.ts";

/** What the main thread sends: the command line once, then the signals it receives. @internal */
export type ServingRequest =
  | { kind: "start"; args: string[]; warning?: string }
  | { kind: "signal"; signal: Deno.Signal };

/** What the serving thread answers, once: the exit status. @internal */
export interface ServingReply {
  /** 0 after a clean stop, 1 when the data, the log file or an address is unusable. */
  status: number;
}

/** Signals relayed by the main thread, as the service listens to them. */
class RelayedSignals implements SignalSource {
  readonly #handlers = new Map<Deno.Signal, Set<() => void>>();

  addSignalListener(signal: Deno.Signal, handler: () => void): void {
    let set = this.#handlers.get(signal);
    if (set === undefined) this.#handlers.set(signal, set = new Set());
    set.add(handler);
  }

  removeSignalListener(signal: Deno.Signal, handler: () => void): void {
    this.#handlers.get(signal)?.delete(handler);
  }

  deliver(signal: Deno.Signal): void {
    for (const handler of this.#handlers.get(signal) ?? []) handler();
  }
}

const signals = new RelayedSignals();

self.onmessage = async (event: MessageEvent<ServingRequest>) => {
  const request = event.data;
  if (request.kind === "signal") {
    signals.deliver(request.signal);
    return;
  }
  self.postMessage({ status: await serve(request.args, request.warning) } satisfies ServingReply);
};

/** Sets up logging and runs the service; resolves to the exit status. */
async function serve(args: string[], warning: string | undefined): Promise<number> {
  // main.ts parsed these already: a usage error cannot happen here.
  const flags = parseFlags(args);
  try {
    await setupLogging({ file: flags.log, verbose: flags.verbose, format: flags.logFormat });
  } catch (error) {
    console.error(`sipdir: cannot open log file ${flags.log}: ${describe(error)}`);
    return 1;
  }
  try {
    // What the main thread could not do, now that there is a log to say it in.
    if (warning !== undefined) getLogger(["sipdir"]).warn(warning);
    return await runService(flags, signals);
  } finally {
    await closeLogging();
  }
}
