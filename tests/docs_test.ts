/**
 * The documentation stays true to the program: every flag of `--help` is
 * in docs/configuration.md with its default, no page names a flag that does
 * not exist, relative links (and their anchors) resolve, and nothing points
 * outside the repository.
 */

import { assertEquals, assertOk } from "./assert.ts";
import { HELP } from "../lib/cli/flags.ts";

const root = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

/** The README and every page of docs/, by path. */
async function pages(): Promise<Map<string, string>> {
  const found = new Map([["README.md", await read("README.md")]]);
  for await (const entry of Deno.readDir(new URL("docs/", root))) {
    if (entry.name.endsWith(".md")) {
      found.set(`docs/${entry.name}`, await read(`docs/${entry.name}`));
    }
  }
  return found;
}

/** `--help`'s flags: long name → short name (or ""), and the default it states, if any. */
function helpFlags(): Map<string, { short: string; fallback?: string }> {
  const flags = new Map<string, { short: string; fallback?: string }>();
  const lines = HELP.split("\n");
  lines.forEach((line, i) => {
    // Options start two columns in: "  -d, --data FILE" or "      --watch".
    const match = line.match(/^ {2}(?:-([a-z]), | {4})--([a-z][a-z-]*)/);
    if (!match) return;
    // The description runs on until the next option (or the end of the list).
    let text = line;
    for (let j = i + 1; j < lines.length && /^\s{20,}\S/.test(lines[j]); j++) text += lines[j];
    const fallback = text.match(/\(default: ([^)]+)\)/)?.[1] ??
      text.match(/(\S+) \(default\)/)?.[1];
    flags.set(match[2], { short: match[1] ?? "", fallback });
  });
  return flags;
}

/** The text outside fenced code blocks, and the fenced blocks' lines. */
function split(markdown: string): { prose: string; code: string[] } {
  const prose: string[] = [];
  const code: string[] = [];
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.trimStart().startsWith("```")) fenced = !fenced;
    else (fenced ? code : prose).push(line);
  }
  return { prose: prose.join("\n"), code };
}

Deno.test("docs: every flag of --help is in docs/configuration.md, with its default", async () => {
  const page = await read("docs/configuration.md");
  const rows = page.split("\n").filter((line) => line.startsWith("| `-"));
  const flags = helpFlags();
  assertOk(flags.size >= 25, `${flags.size} flags read from --help`);
  for (const [name, { short, fallback }] of flags) {
    const row = rows.find((r) => r.includes(`\`--${name}`));
    assertOk(row, `--${name} has no row in docs/configuration.md`);
    if (short !== "") {
      assertOk(row.includes(`\`-${short}\``), `-${short} missing from --${name}'s row`);
    }
    if (fallback !== undefined) {
      const stated = row.split("|")[2].trim().replaceAll("`", "");
      assertEquals(stated, fallback, `--${name}'s default in docs/configuration.md`);
    }
  }
});

Deno.test("docs: no page names a flag that sipdir does not have", async () => {
  const flags = helpFlags();
  const shorts = new Set([...flags.values()].map((f) => f.short).filter((s) => s !== ""));
  const known = (flag: string) =>
    flag.startsWith("--") ? flags.has(flag.slice(2)) : shorts.has(flag.slice(1));
  const unknown: string[] = [];
  for (const [path, text] of await pages()) {
    const { prose, code } = split(text);
    // A code span that starts with a dash names a sipdir flag (other programs' flags are
    // written with their program).
    for (const span of prose.matchAll(/`(--?[a-z][a-z-]*)[ `=]/g)) {
      if (!known(span[1])) unknown.push(`${path}: ${span[1]}`);
    }
    // A command line that runs sipdir, with its continuation lines.
    let continued = false;
    for (const line of code) {
      const runs: boolean = /^\s*(?:\$\s+)?(?:\S+=)?(?:\/\S+\/)?sipdir\s+-/.test(line) ||
        continued;
      continued = runs && line.trimEnd().endsWith("\\");
      if (!runs) continue;
      const args = line.slice(line.search(/sipdir\s|^\s/) + 1);
      for (const flag of args.matchAll(/(?:^|\s)(--?[a-z][a-z-]*)/g)) {
        if (!known(flag[1])) unknown.push(`${path}: ${flag[1]} in "${line.trim()}"`);
      }
    }
  }
  assertEquals(unknown, []);
});

/** GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/`/g, "").replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

Deno.test("docs: relative links resolve, anchors included; nothing points outside the repository", async () => {
  const all = await pages();
  const broken: string[] = [];
  for (const [path, text] of all) {
    const { prose } = split(text);
    for (const link of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = link[1];
      if (/^[a-z]+:/.test(target)) continue;
      const [file, anchor] = target.split("#");
      const resolved = file === ""
        ? path
        : new URL(file, new URL(path, "file:///")).pathname.slice(1);
      let content = all.get(resolved);
      if (content === undefined) {
        try {
          content = await read(resolved);
        } catch {
          broken.push(`${path}: ${target} (no ${resolved})`);
          continue;
        }
      }
      if (anchor !== undefined) {
        const anchors = [...split(content).prose.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1]));
        if (!anchors.includes(anchor)) broken.push(`${path}: ${target} (no such heading)`);
      }
    }
  }
  assertEquals(broken, []);
  // The repository's docs and benchmarks stand on their own.
  const outside: string[] = [];
  const files = [...all.keys()];
  for await (const entry of Deno.readDir(new URL("bench/", root))) {
    if (entry.isFile && /\.(ts|c|md)$/.test(entry.name)) files.push(`bench/${entry.name}`);
  }
  for (const file of files) {
    const text = all.get(file) ?? await read(file);
    if (/\.\.\/shared|\/work\//.test(text)) outside.push(file);
  }
  assertEquals(outside, []);
});
