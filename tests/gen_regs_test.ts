import { assertEquals, assertOk } from "./assert.ts";
import { EXAMPLE_RECORD, generateRegistrations, writeRegistrations } from "../testing/gen_regs.ts";
import { loadDirectory } from "../lib/loading/load.ts";

Deno.test("gen_regs: deterministic, example first, some duplicates, valid", () => {
  const first = [...generateRegistrations({ count: 2000 })];
  const again = [...generateRegistrations({ count: 2000 })];
  assertEquals(first, again);
  assertEquals(first[0].line, EXAMPLE_RECORD);
  const duplicates = first.filter((g) => g.duplicate).length;
  assertOk(duplicates >= 5, `${duplicates} duplicates`);
  for (const { aor, line } of first) {
    assertEquals(JSON.parse(line).addressOfRecord, aor);
    assertOk(aor.length === 30 || aor.length === 32, aor);
  }
  const other = [...generateRegistrations({ count: 50, seed: 2 })];
  assertOk(other[1].line !== first[1].line);
});

Deno.test("gen_regs: data/regs is the generator's 1000-line output", async () => {
  const out = await Deno.makeTempFile();
  try {
    await writeRegistrations({ count: 1000, out });
    const bundled = await Deno.readTextFile(new URL("../data/regs", import.meta.url));
    assertEquals(await Deno.readTextFile(out), bundled);
    const { report, directory } = await loadDirectory({ path: out });
    assertOk(report.entries >= 500 && report.duplicates >= 3, JSON.stringify(report));
    assertEquals(
      new TextDecoder().decode(directory.get("0142e2fa3543cb32bf000100620002")),
      EXAMPLE_RECORD + "\n",
    );
  } finally {
    await Deno.remove(out);
  }
});
