/**
 * Test-only helpers: in-process servers and sipdir processes over given data.
 *
 * @module
 */

import { assertEquals } from "./assert.ts";
import type { Directory } from "../lib/directory/directory.ts";
import { loadDirectory } from "../lib/loading/load.ts";
import { serve, type ServeOptions, type Server } from "../lib/transport/server.ts";
import { type Dataset, tempFile } from "../testing/data.ts";
import { LineClient } from "../testing/line_client.ts";
import { SipdirProcess } from "../testing/sipdir_process.ts";

export { seededRandom } from "../testing/gen_regs.ts";
export { Dataset, record, tempFile } from "../testing/data.ts";
export { LineClient } from "../testing/line_client.ts";
export {
  compileFlags,
  mainPath,
  runSipdir,
  runtimeFlags,
  SipdirProcess,
} from "../testing/sipdir_process.ts";

/** Loads a directory from JSON Lines text. */
export async function directoryOf(text: string): Promise<Directory> {
  const path = await tempFile(text);
  try {
    return (await loadDirectory({ path })).directory;
  } finally {
    await Deno.remove(path);
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
