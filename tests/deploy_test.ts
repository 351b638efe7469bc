/**
 * The deployment files agree with the binary they deploy, so that they
 * cannot drift from it: the container image (`deploy/container/Containerfile`,
 * which cannot be built on these machines) and the ports of the HAProxy
 * configuration (run for real by tests/integration/haproxy_test.ts). Every
 * command line is parsed with sipdir's own {@linkcode parseFlags}; ports and
 * paths are checked against what it returns and against `lib/limits.ts`.
 */

import { dirname } from "node:path";
import { assertEquals, assertOk } from "./assert.ts";
import { type Flags, parseFlags } from "../lib/cli/flags.ts";
import { DEFAULTS } from "../lib/limits.ts";

const root = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, root));

// ------------------------------------------------------------- Containerfile

/** One instruction of a Containerfile: keyword (upper case) and its text. */
interface Instruction {
  keyword: string;
  text: string;
}

/** A Containerfile's instructions, by stage (comments dropped, continuations joined). */
function stages(source: string): { from: string; name?: string; steps: Instruction[] }[] {
  const logical: string[] = [];
  let current = "";
  for (const line of source.split("\n")) {
    if (/^\s*#/.test(line)) continue;
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " ";
      continue;
    }
    current += line;
    if (current.trim() !== "") logical.push(current.trim());
    current = "";
  }
  const result: { from: string; name?: string; steps: Instruction[] }[] = [];
  for (const line of logical) {
    const [, keyword, text] = line.match(/^(\S+)\s+(.*)$/)!;
    if (keyword.toUpperCase() === "FROM") {
      const [, from, name] = text.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i)!;
      result.push({ from, name, steps: [] });
    } else {
      result.at(-1)!.steps.push({ keyword: keyword.toUpperCase(), text });
    }
  }
  return result;
}

/** The one instruction `keyword` of a stage. */
function only(steps: Instruction[], keyword: string): string {
  const found = steps.filter((s) => s.keyword === keyword);
  assertEquals(found.length, 1, `one ${keyword}`);
  return found[0].text;
}

/** The flags' ports: line, Redis and HTTP. */
function portsOf(flags: Flags): number[] {
  return [flags.port, flags.redisPort!, flags.httpPort!];
}

async function containerfile() {
  const [build, runtime] = stages(await read("deploy/container/Containerfile"));
  const entrypoint = JSON.parse(only(runtime.steps, "ENTRYPOINT")) as string[];
  const cmd = JSON.parse(only(runtime.steps, "CMD")) as string[];
  return { build, runtime, entrypoint, cmd, flags: parseFlags(cmd) };
}

Deno.test("container: the build stage runs exactly deno task compile, on the pinned Deno", async () => {
  const { build, runtime } = await containerfile();
  const ci = await read(".ci/run");
  const pinned = ci.match(/^DENO_VERSION=(\S+)$/m)![1];
  assertEquals(build.from, `docker.io/denoland/deno:${pinned}`);
  assertEquals(Deno.version.deno, pinned, "the tests run on the pinned Deno too");
  const runs = build.steps.filter((s) => s.keyword === "RUN").map((s) => s.text);
  assertEquals(runs, ["deno task compile"]);

  // The compile task's inputs are copied: its entry point, the module it
  // --include's, deno.json and deno.lock.
  const config = JSON.parse(await read("deno.json"));
  const compile: string = config.tasks.compile;
  const copied = build.steps.filter((s) => s.keyword === "COPY")
    .flatMap((s) => s.text.split(/\s+/).slice(0, -1));
  const inputs = [
    "deno.json",
    "deno.lock",
    compile.split(/\s+/).at(-1)!,
    compile.match(/--include\s+(\S+)/)![1],
  ];
  for (const input of inputs) {
    assertOk(
      copied.some((c) => c === input || (c.endsWith("/") && input.startsWith(c))),
      `${input} is not copied into the build stage (${copied.join(" ")})`,
    );
  }
  // Every module main.ts reaches is under a copied path.
  const graph = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("main.ts", root).pathname],
    stdout: "piped",
  }).output();
  const modules = JSON.parse(new TextDecoder().decode(graph.stdout)).modules as {
    specifier: string;
  }[];
  for (const { specifier } of modules.filter((m) => m.specifier.startsWith("file:"))) {
    const path = specifier.slice(root.href.length);
    assertOk(
      copied.some((c) => c === path || (c.endsWith("/") && path.startsWith(c))),
      `${path} (imported by main.ts) is not copied into the build stage`,
    );
  }

  // The runtime stage takes the file the task writes (--output, in WORKDIR).
  const output = compile.match(/--output\s+(\S+)/)![1];
  const workdir = only(build.steps, "WORKDIR");
  const from = only(runtime.steps, "COPY");
  assertOk(
    from.startsWith(`--from=${build.name} ${workdir}/${output} `),
    `runtime COPY: ${from}`,
  );
});

Deno.test("container: non-root, SIGTERM, its command line parses; EXPOSE and VOLUME match it", async () => {
  const { runtime, entrypoint, cmd, flags } = await containerfile();
  const user = only(runtime.steps, "USER");
  assertOk(/^[1-9]\d*(:[1-9]\d*)?$/.test(user), `USER ${user}: a non-root uid`);
  assertEquals(only(runtime.steps, "STOPSIGNAL"), "SIGTERM");
  const binary = only(runtime.steps, "COPY").split(/\s+/).at(-1);
  assertEquals(entrypoint, [binary!]);
  assertOk(cmd.length > 0);
  // Reachable from outside the container, all three ports on.
  assertEquals(flags.ip, "0.0.0.0");
  const exposed = only(runtime.steps, "EXPOSE").split(/\s+/).map(Number);
  assertEquals(exposed.toSorted(), portsOf(flags).toSorted());
  const volumes = JSON.parse(only(runtime.steps, "VOLUME")) as string[];
  assertOk(volumes.includes(dirname(flags.data)), `--data ${flags.data} is on a VOLUME`);
});

// --------------------------------------------------------------------- HAProxy

Deno.test("haproxy.cfg: servers on the image's line and Redis ports, checked on its /readyz", async () => {
  const { flags } = await containerfile();
  const config = await read("deploy/haproxy/haproxy.cfg");
  let backend = "";
  const servers: { backend: string; port: number; check: number }[] = [];
  for (const line of config.split("\n")) {
    const section = line.match(/^backend\s+(\S+)/);
    if (section) backend = section[1];
    const server = line.match(/^\s+server\s+\S+\s+\S+:(\d+)\s.*\bcheck port (\d+)/);
    if (server) servers.push({ backend, port: Number(server[1]), check: Number(server[2]) });
  }
  assertOk(servers.length >= 4);
  for (const { backend, port, check } of servers) {
    assertEquals(port, backend === "sipdir_redis" ? flags.redisPort : flags.port, backend);
    assertEquals(check, flags.httpPort);
  }
  assertOk(/^\s+option httpchk GET \/readyz$/m.test(config));
  // HAProxy's timeouts leave idle connections to sipdir's --timeout.
  for (const side of ["client", "server"]) {
    const [, value, unit] = config.match(new RegExp(`^\\s+timeout ${side}\\s+(\\d+)(s|ms)$`, "m"))!;
    const ms = Number(value) * (unit === "s" ? 1000 : 1);
    assertOk(ms > DEFAULTS.idleTimeout, `timeout ${side} ${ms} ms`);
  }
});
