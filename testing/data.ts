/**
 * Test and benchmark data: temporary files, records, generated datasets.
 *
 * @module
 */

import { generateRegistrations } from "./gen_regs.ts";

const encoder = new TextEncoder();

/** Writes `content` to a new temporary file; returns its path. */
export async function tempFile(content: string | Uint8Array): Promise<string> {
  const path = await Deno.makeTempFile({ prefix: "sipdir-test-" });
  await Deno.writeFile(path, typeof content === "string" ? encoder.encode(content) : content);
  return path;
}

/** A JSON Lines record for `aor`, with some payload. */
export function record(aor: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ addressOfRecord: aor, contact: `<sip:${aor}@10.0.0.1>`, ...extra });
}

/** Generated registrations for a test: the dump, its AORs and their answers. */
export class Dataset {
  /** The AORs, in dump order. */
  readonly aors: string[];
  /** Each AOR's registration line, without its `\n`. */
  readonly answers: Map<string, string>;
  /** The dump, one registration a line. */
  readonly text: string;

  /**
   * Generates `count` registrations, the same for the same `seed`.
   * @param count how many
   * @param seed the generator's seed
   */
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
