/**
 * The deployment files agree with the binary they deploy, so that they
 * cannot drift from it: the container image (`deploy/container/Containerfile`,
 * which cannot be built on these machines), the Kubernetes manifests
 * (`deploy/kubernetes/`, no cluster here) and the ports of the HAProxy
 * configuration (run for real by tests/integration/haproxy_test.ts), and the
 * environment that each launcher gives sipdir. Every
 * command line is parsed with sipdir's own {@linkcode parseFlags}; ports,
 * probes, paths and memory are checked against what it returns, against
 * `lib/limits.ts` and against the memory formula of docs/operations.md.
 */

import { parse } from "yaml";
import { dirname } from "node:path";
import { assertEquals, assertOk } from "./assert.ts";
import { type Flags, parseFlags, VERSION } from "../lib/cli/flags.ts";
import { DEFAULTS } from "../lib/limits.ts";
import { HUGE_PAGES_TUNABLE } from "../lib/operations/huge_pages.ts";
import { LAUNCH_ENV } from "../testing/sipdir_process.ts";

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
  // The Redis port, on every address, asks for a password: a secret's file,
  // where podman and docker mount secrets (never a file in the image).
  assertEquals(flags.redisIp, "0.0.0.0");
  assertOk(flags.redisPasswordFile?.startsWith("/run/secrets/"), `${flags.redisPasswordFile}`);
  assertOk(flags.protectedMode, "protected mode stays on");
});

// ------------------------------------------------------------------ Launchers

Deno.test("every launcher gives sipdir the environment the tests start it with", async () => {
  const expected = Object.entries(LAUNCH_ENV).map(([name, value]) => `${name}=${value}`);
  assertEquals(expected, [`GLIBC_TUNABLES=${HUGE_PAGES_TUNABLE}`]);
  // The start task: assignments before its command, as deno task reads them.
  const start: string = JSON.parse(await read("deno.json")).tasks.start;
  assertEquals(start.split(/\s+/).slice(0, expected.length + 1), [...expected, "deno"]);
  // The systemd unit.
  const unit = await read("deploy/sipdir.service");
  const environment = [...unit.matchAll(/^Environment=(.*)$/gm)].flatMap((m) => m[1].split(/\s+/));
  assertEquals(environment, expected);
  // The container image, and the Kubernetes pod that runs it without overriding it.
  const { runtime } = await containerfile();
  const env = runtime.steps.filter((s) => s.keyword === "ENV").map((s) => s.text);
  assertEquals(env, expected);
  const [container] = (await manifests()).get("Deployment").spec.template.spec.containers;
  for (const { name } of container.env ?? []) {
    assertOk(!(name in LAUNCH_ENV), `the Deployment overrides ${name}`);
  }
});

// ------------------------------------------------------------------ Kubernetes

// deno-lint-ignore no-explicit-any
type Yaml = any;

async function manifests(): Promise<Map<string, Yaml>> {
  const byKind = new Map<string, Yaml>();
  const dir = new URL("deploy/kubernetes/", root);
  const kustomization = parse(await Deno.readTextFile(new URL("kustomization.yaml", dir)));
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.endsWith(".yaml") && entry.name !== "kustomization.yaml") {
      files.push(entry.name);
    }
  }
  assertEquals(
    [...kustomization.resources].toSorted(),
    files.toSorted(),
    "kustomization.yaml lists every manifest",
  );
  for (const file of files) {
    const doc = parse(await Deno.readTextFile(new URL(file, dir)));
    assertOk(!byKind.has(doc.kind), `one ${doc.kind}`);
    byKind.set(doc.kind, doc);
  }
  return byKind;
}

/**
 * The memory formula of docs/operations.md ("Sizing memory"): bytes per
 * registration, runtime MB, KiB per idle connection, and what the journal's
 * changes hold, as a multiple of their bytes.
 */
async function memoryFormula() {
  const page = (await read("docs/operations.md")).replace(/\s+/g, " ");
  const number = (pattern: RegExp) => {
    const match = page.match(pattern);
    assertOk(match, `docs/operations.md no longer says ${pattern}: update this test's formula`);
    return Number(match[1]);
  };
  return {
    perEntry: number(/about (\d+) bytes per registration for the index/),
    runtime: number(/about (\d+) MB for the runtime/) * 1e6,
    perConn: number(/each idle connection costs about (\d+) KiB/) * 1024,
    journal: number(/registrations changed since the dump, held at most (\d+) × their size/),
  };
}

function bytes(quantity: string): number {
  const match = quantity.match(/^(\d+)(Ki|Mi|Gi|k|M|G)?$/)!;
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ""];
  return Number(match[1]) * (unit ?? 1);
}

Deno.test("kubernetes: the Deployment's args, ports, probes and grace agree with sipdir", async () => {
  const kinds = await manifests();
  const deployment = kinds.get("Deployment");
  const pod = deployment.spec.template.spec;
  assertOk(deployment.spec.replicas >= 2, "replicas >= 2");
  assertEquals(pod.containers.length, 1);
  const [container] = pod.containers;
  assertEquals(container.command, undefined, "the image's ENTRYPOINT runs");
  const flags = parseFlags(container.args);
  assertEquals(flags.ip, "0.0.0.0");
  assertOk(flags.watch, "--watch, which the memory limit allows for");

  // Container ports by name are sipdir's ports, and the image's.
  const ports = Object.fromEntries(
    container.ports.map((p: Yaml) => [p.name, p.containerPort]),
  );
  assertEquals(ports, { line: flags.port, redis: flags.redisPort, http: flags.httpPort });
  const image = await containerfile();
  assertEquals(portsOf(image.flags), portsOf(flags), "the same ports as the image's CMD");
  assertEquals(image.flags.data, flags.data);
  assertEquals(container.image.split(":").at(-1), VERSION, "image tag = sipdir's version");

  // Probes: HTTP on --http-port; readiness /readyz, liveness and start-up /healthz.
  const port = (p: string | number) => typeof p === "number" ? p : ports[p];
  const probes = {
    readinessProbe: "/readyz",
    livenessProbe: "/healthz",
    startupProbe: "/healthz",
  };
  for (const [probe, path] of Object.entries(probes)) {
    const get = container[probe]?.httpGet;
    assertOk(get, `${probe} is an httpGet`);
    assertEquals(get.path, path, probe);
    assertEquals(port(get.port), flags.httpPort, `${probe} port`);
  }
  // The start-up probe allows a slow start (at least a minute) before liveness begins.
  const startup = container.startupProbe;
  assertOk(startup.periodSeconds * startup.failureThreshold >= 60);
  const annotations = deployment.spec.template.metadata.annotations;
  assertEquals(Number(annotations["prometheus.io/port"]), flags.httpPort);
  assertEquals(annotations["prometheus.io/path"], "/metrics");

  // Stopping: the preStop sleep, then sipdir's drain, within the grace period.
  const drain = Math.min(DEFAULTS.shutdownGrace, flags.timeout) / 1000;
  const sleep = container.lifecycle?.preStop?.sleep?.seconds ?? 0;
  assertOk(
    pod.terminationGracePeriodSeconds > sleep + drain,
    `grace ${pod.terminationGracePeriodSeconds} s <= preStop ${sleep} s + drain ${drain} s`,
  );

  // Non-root, read-only root file system; the image's user.
  const uid = Number(only(image.runtime.steps, "USER").split(":")[0]);
  assertEquals(pod.securityContext.runAsNonRoot, true);
  assertEquals(pod.securityContext.runAsUser, uid);
  assertEquals(container.securityContext.readOnlyRootFilesystem, true);
  assertEquals(container.securityContext.allowPrivilegeEscalation, false);
  assertEquals(container.securityContext.capabilities.drop, ["ALL"]);

  // The Redis password: --redis-password-file is a key of a Secret, mounted
  // read-only, readable by the pod's group only; protected mode stays on.
  assertOk(flags.protectedMode, "protected mode stays on");
  const secretDir = dirname(flags.redisPasswordFile!);
  const secretMount = container.volumeMounts.find((m: Yaml) => m.mountPath === secretDir);
  assertOk(secretMount, `a volume mounted at ${secretDir}`);
  assertEquals(secretMount.readOnly, true);
  const secret = pod.volumes.find((v: Yaml) => v.name === secretMount.name).secret;
  assertOk(secret?.secretName, "the password comes from a Secret");
  assertEquals(secret.items, [{ key: "redis-password", path: "redis-password" }]);
  assertEquals(`${secretDir}/redis-password`, flags.redisPasswordFile);
  assertEquals(secret.defaultMode & 0o007, 0, "not readable by others");
  assertEquals(pod.securityContext.fsGroup, pod.securityContext.runAsGroup);
  assertOk(
    !kinds.has("Secret"),
    "no Secret (no password) in the manifests: created by the operator",
  );
  // Kept idle connections are probed after 5 minutes, as Redis does.
  assertOk(
    pod.securityContext.sysctls.some((s: Yaml) =>
      s.name === "net.ipv4.tcp_keepalive_time" && Number(s.value) <= 300
    ),
  );

  // The dump: the --data directory is a read-only mount of the claim.
  const mount = container.volumeMounts.find((m: Yaml) => m.mountPath === dirname(flags.data));
  assertOk(mount, `a volume mounted at ${dirname(flags.data)}`);
  assertEquals(mount.readOnly, true);
  const volume = pod.volumes.find((v: Yaml) => v.name === mount.name);
  assertEquals(
    volume.persistentVolumeClaim.claimName,
    kinds.get("PersistentVolumeClaim").metadata.name,
  );
});

Deno.test("kubernetes: memory is the documented formula for the stated dump, reload and journal included", async () => {
  const deployment = (await manifests()).get("Deployment");
  const [container] = deployment.spec.template.spec.containers;
  const flags = parseFlags(container.args);
  const entries = Number(deployment.metadata.annotations["sipdir/sized-for-registrations"]);
  const dump = Number(deployment.metadata.annotations["sipdir/sized-for-dump-bytes"]);
  assertOk(entries > 0 && dump > 0, "the dump the memory is sized for is stated");
  const changed = Number(
    deployment.metadata.annotations["sipdir/sized-for-changed-registrations"] ?? 0,
  );
  assertOk(flags.journal === undefined || changed > 0, "with --journal, the changes are stated");
  const { perEntry, runtime, perConn, journal } = await memoryFormula();
  const steady = dump + perEntry * entries + runtime;
  // A reload (--watch, SIGHUP) holds the old and the new data at once; the
  // clients, at most --max-client-memory; the journal's changes, a multiple
  // of the bytes of the registrations they change.
  const needed = (flags.watch ? 2 : 1) * steady + perConn * flags.maxClients +
    flags.maxClientMemory + (flags.journal === undefined ? 0 : journal * changed * dump / entries);
  const limit = bytes(container.resources.limits.memory);
  const request = bytes(container.resources.requests.memory);
  console.log(
    `  ${entries} registrations, ${dump / 1e6} MB: steady ${(steady / 1e6).toFixed(0)} MB, ` +
      `with a reload and ${flags.maxClients} connections ${(needed / 1e6).toFixed(0)} MB; ` +
      `limit ${(limit / 1e6).toFixed(0)} MB`,
  );
  assertOk(limit >= needed, `limit ${limit} < ${needed}`);
  assertOk(limit <= needed * 1.25, `limit ${limit} is far above ${needed}: stale?`);
  assertEquals(request, limit, "memory request = limit");
});

Deno.test("kubernetes: the Service and the PodDisruptionBudget select the pods; ports match", async () => {
  const kinds = await manifests();
  const deployment = kinds.get("Deployment");
  const labels = deployment.spec.template.metadata.labels;
  const [container] = deployment.spec.template.spec.containers;
  const flags = parseFlags(container.args);
  const selects = (selector: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  assertOk(selects(deployment.spec.selector.matchLabels));

  const service = kinds.get("Service");
  assertOk(selects(service.spec.selector), "the Service selects the pods");
  const containerPorts = new Map<string, number>(
    container.ports.map((p: Yaml) => [p.name, p.containerPort]),
  );
  const target = (p: Yaml) =>
    typeof p.targetPort === "number" ? p.targetPort : containerPorts.get(p.targetPort);
  const servicePorts = Object.fromEntries(
    service.spec.ports.map((p: Yaml) => [p.name, [p.port, target(p)]]),
  );
  // Clients use the same port numbers as with one sipdir.
  assertEquals(servicePorts, {
    line: [flags.port, flags.port],
    redis: [flags.redisPort, flags.redisPort],
  });

  const pdb = kinds.get("PodDisruptionBudget");
  assertOk(selects(pdb.spec.selector.matchLabels), "the PodDisruptionBudget selects the pods");
  const unavailable = pdb.spec.maxUnavailable ??
    deployment.spec.replicas - pdb.spec.minAvailable;
  assertOk(
    unavailable >= 1 && unavailable < deployment.spec.replicas,
    "a drain can proceed, and never takes every replica",
  );
  assertEquals(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
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
