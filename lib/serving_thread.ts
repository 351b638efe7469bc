/**
 * Running the service on a thread of its own, a Worker whose runtime polls
 * at most {@linkcode IO_EVENTS_PER_TICK} socket events per pass. The main
 * thread keeps the process: it relays signals and returns the exit status.
 *
 * Why a Worker: every connection's read is a promise that Deno's runtime
 * (tokio, one thread) completes after an epoll pass. tokio lets one task
 * run at most 128 operations before it must yield, and one epoll pass
 * delivers up to `DENO_TOKIO_MAX_IO_EVENTS_PER_TICK` events, 1024 by
 * default: with hundreds of busy connections, the reads past the budget
 * wait behind fresh ones, and a few connections wait hundreds of
 * milliseconds while the rest are answered at once. With at most 64 events
 * a pass, every ready read is served in the pass that found it. Deno reads
 * that variable when it creates a runtime, and a Worker gets a runtime of
 * its own: setting it before creating the Worker gives the serving thread
 * the setting, whatever the user's environment says, without anything to
 * set in the unit, the container or the shell. (Undocumented: the test
 * suite checks, with strace, that the serving thread's epoll takes 64.)
 *
 * @module
 */

import { describe } from "./errors.ts";
import type { ServingReply, ServingRequest } from "./serving_worker.ts";

/** The environment variable Deno's runtimes read their events per epoll pass from. */
export const IO_EVENTS_VARIABLE = "DENO_TOKIO_MAX_IO_EVENTS_PER_TICK";
/** Socket events one epoll pass of the serving thread delivers, at most. */
export const IO_EVENTS_PER_TICK = 64;

/** The signals the service acts on; the main thread relays them. */
export const RELAYED_SIGNALS: readonly Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR2"];

/** The serving thread's module; `deno compile` embeds it through the compile task's `--include`. */
export const SERVING_WORKER_URL: URL = new URL("./serving_worker.ts", import.meta.url);

/**
 * Runs sipdir with `args` on the serving thread until it stops; resolves to
 * the exit status. Signals that reach the process meanwhile are passed on;
 * those that come after are ignored.
 * A fault that ends the thread is reported on stderr, with status 1.
 *
 * @example
 * ```ts ignore
 * import { serveOnThread } from "./serving_thread.ts";
 * Deno.exit(await serveOnThread(["--data", "data/regs", "--port", "0"]));
 * ```
 */
export async function serveOnThread(args: readonly string[]): Promise<number> {
  const warning = setEventsPerTick();
  const worker = new Worker(SERVING_WORKER_URL, { type: "module", name: "sipdir-serving" });
  const exited = Promise.withResolvers<number>();
  let serving = true;
  // The listeners stay until the process exits: removing the last one gives
  // the signal its default action back, and a second SIGTERM in the moment
  // between the service's end and the exit would kill the process (status 143).
  for (const signal of RELAYED_SIGNALS) {
    Deno.addSignalListener(signal, () => {
      if (serving) worker.postMessage({ kind: "signal", signal } satisfies ServingRequest);
    });
  }
  worker.onmessage = (event: MessageEvent<ServingReply>) => exited.resolve(event.data.status);
  worker.onerror = (event) => {
    event.preventDefault();
    console.error(`sipdir: the service stopped on an error: ${event.message}`);
    exited.resolve(1);
  };
  worker.onmessageerror = () => {
    console.error("sipdir: the service's exit status could not be read");
    exited.resolve(1);
  };
  worker.postMessage({ kind: "start", args: [...args], warning } satisfies ServingRequest);
  try {
    return await exited.promise;
  } catch (error) {
    console.error(`sipdir: ${describe(error)}`);
    return 1;
  } finally {
    serving = false;
    worker.terminate();
  }
}

/**
 * Sets {@linkcode IO_EVENTS_VARIABLE} for the runtimes created from now on,
 * unless the user set it; returns a warning for the log when it cannot.
 */
function setEventsPerTick(): string | undefined {
  try {
    if (Deno.env.get(IO_EVENTS_VARIABLE) === undefined) {
      Deno.env.set(IO_EVENTS_VARIABLE, String(IO_EVENTS_PER_TICK));
    }
    return undefined;
  } catch (error) {
    return `cannot set ${IO_EVENTS_VARIABLE} (${describe(error)}): with hundreds of busy ` +
      `connections, some may wait long; run with --allow-env=${IO_EVENTS_VARIABLE}`;
  }
}
