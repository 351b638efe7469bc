/**
 * sipdir: serves SIP registrations from a JSON Lines dump over TCP.
 *
 * Flags → the service on its serving thread (`lib/serving_thread.ts`) →
 * exit status.
 *
 * @module
 */

import { HELP, parseFlags, USAGE, UsageError, VERSION } from "./lib/cli/flags.ts";
import { serveOnThread } from "./lib/serving_thread.ts";

/**
 * Runs sipdir with the given arguments; resolves to the exit status:
 * 0 after a clean stop or for `--help` and `--version`, 1 when the data, the
 * log file or an address is unusable, 2 for a bad command line.
 *
 * @example
 * ```ts
 * import { main } from "./main.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(await main(["--version"]), 0);
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let flags;
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
  return await serveOnThread(args);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
