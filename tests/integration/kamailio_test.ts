/**
 * Kamailio end to end: deploy/kamailio/sipdir.cfg (ndb_redis asking sipdir's
 * Redis port), with only its two ports changed, answers OPTIONS driven by
 * SIPp with deploy/kamailio/options.xml: 200 with the registration in
 * X-Registration for every AOR of the dump, 404 for unknown ones. Every
 * answer is checked against the dump, byte for byte; sipsak checks a sample
 * first (and tells when Kamailio is up).
 *
 * sipdir keeps Kamailio's Redis connections however long they are idle, as
 * Redis does (`--timeout 1` closes idle line connections only): a SIPp run
 * after a quiet spell reuses them. Then sipdir is restarted on the same port
 * with `--redis-timeout 1`: ndb_redis reconnects to it, and again after
 * that sipdir closed every idle connection, without a failed lookup.
 *
 * Loopback only; no root needed (Kamailio runs as whoever runs the test, its
 * runtime directory a temporary one). Needs kamailio, kamailio-redis-modules,
 * sip-tester (SIPp) and sipsak: fails, naming them, without (.ci/run installs
 * them).
 */

import dgram from "node:dgram";
import { assertEquals, assertOk } from "../assert.ts";
import { Dataset, SipdirProcess, tempFile } from "../helpers.ts";
import { run } from "./redis_clients.ts";

const DEPLOY = new URL("../../deploy/kamailio/", import.meta.url).pathname;
const CONFIG = `${DEPLOY}sipdir.cfg`;
const SCENARIO = `${DEPLOY}options.xml`;
const decoder = new TextDecoder();

/** A free UDP port on 127.0.0.1 (bound, then released). */
async function freeUdpPort(): Promise<number> {
  const socket = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

/** The config with its SIP listener and sipdir's port replaced; each must occur once. */
export function loopbackConfig(config: string, sipPort: number, redisPort: number): string {
  const replace = (text: string, from: RegExp, to: string) => {
    const count = text.match(new RegExp(from.source, from.flags + "g"))?.length ?? 0;
    assertEquals(count, 1, `${from} in ${CONFIG}`);
    return text.replace(from, to);
  };
  const listen = replace(
    config,
    /^listen=udp:127\.0\.0\.1:5060$/m,
    `listen=udp:127.0.0.1:${sipPort}`,
  );
  return replace(
    listen,
    /"name=dir;addr=127\.0\.0\.1;port=6379"/,
    `"name=dir;addr=127.0.0.1;port=${redisPort}"`,
  );
}

/** A process whose stdout and stderr are read as they come (so it never blocks on a full pipe). */
class Followed {
  readonly child: Deno.ChildProcess;
  output = "";
  readonly #done: Promise<void>;

  constructor(command: string, args: string[], debianPackage: string) {
    try {
      this.child = new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).spawn();
    } catch (error) {
      throw new Error(`cannot run ${command} (Debian: ${debianPackage}): ${error}`);
    }
    const read = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) this.output += decoder.decode(chunk, { stream: true });
    };
    this.#done = Promise.all([read(this.child.stdout), read(this.child.stderr)]).then(() => {});
  }

  /** Stops it by its pid: SIGTERM, SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<Deno.CommandStatus> {
    const signal = (s: Deno.Signal) => {
      try {
        this.child.kill(s);
      } catch {
        // Exited already.
      }
    };
    signal("SIGTERM");
    const timer = setTimeout(() => signal("SIGKILL"), graceMs);
    try {
      const status = await this.child.status;
      await this.#done;
      return status;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One SIPp run's results. */
interface SippRun {
  /** One entry per logged call: AOR, status, registration ("" for a 404). */
  calls: { aor: string; status: string; registration: string }[];
  successful: number;
  failed: number;
  seconds: number;
}

/** Runs the scenario for `aors` against 127.0.0.1:`sipPort`. */
async function sipp(dir: string, name: string, sipPort: number, aors: string[]): Promise<SippRun> {
  const csv = `${dir}/${name}.csv`;
  const log = `${dir}/${name}.log`;
  const stats = `${dir}/${name}_stats.csv`;
  await Deno.writeTextFile(csv, `SEQUENTIAL\n${aors.join("\n")}\n`);
  const started = performance.now();
  const ran = await run("sipp", [
    `127.0.0.1:${sipPort}`,
    ...["-sf", SCENARIO, "-inf", csv, "-m", String(aors.length)],
    ...["-r", "500", "-i", "127.0.0.1", "-p", String(await freeUdpPort())],
    ...["-recv_timeout", "5000", "-timeout", "60s", "-timeout_error", "-nostdin"],
    ...["-trace_logs", "-log_file", log, "-trace_stat", "-stf", stats],
  ], { timeoutMs: 90_000, debianPackage: "sip-tester" });
  const seconds = (performance.now() - started) / 1000;
  const statLines = (await Deno.readTextFile(stats)).trim().split("\n");
  const header = statLines[0].split(";");
  const last = statLines[statLines.length - 1].split(";");
  const column = (name: string) => Number(last[header.indexOf(name)]);
  const calls = (await Deno.readTextFile(log)).split("\n").filter((l) => l !== "").map((line) => {
    const [aor, status, ...rest] = line.split(" ");
    return { aor, status, registration: rest.join(" ") };
  });
  assertEquals(ran.code, 0, `sipp exited ${ran.code}:\n${ran.stdout.slice(-3000)}${ran.stderr}`);
  return {
    calls,
    successful: column("SuccessfulCall(C)"),
    failed: column("FailedCall(C)"),
    seconds,
  };
}

/** Checks every call of a run against the dump; returns the counts. */
function check(result: SippRun, aors: string[], data: Dataset) {
  const byAor = new Map(result.calls.map((call) => [call.aor, call]));
  assertEquals(result.calls.length, aors.length, "one logged answer per request");
  assertEquals(byAor.size, aors.length, "each AOR answered once");
  let ok200 = 0;
  let ok404 = 0;
  const wrong: string[] = [];
  for (const aor of aors) {
    const call = byAor.get(aor);
    const expected = data.answers.get(aor);
    if (expected !== undefined && call?.status === "200" && call.registration === expected) ok200++;
    else if (expected === undefined && call?.status === "404" && call.registration === "") ok404++;
    else wrong.push(`${aor}: ${call?.status} ${call?.registration.slice(0, 80)}`);
  }
  assertEquals(wrong, [], "answers that differ from the dump");
  assertEquals([result.successful, result.failed], [aors.length, 0], "SIPp's call counts");
  return { requests: aors.length, ok200, ok404, failures: wrong.length + result.failed };
}

/** sipsak's OPTIONS to sip:`user`@127.0.0.1:`port`: exit status and the reply. */
async function sipsak(port: number, user: string) {
  const ran = await run("sipsak", ["-vv", "-s", `sip:${user}@127.0.0.1:${port}`], {
    timeoutMs: 20_000,
    debianPackage: "sipsak",
  });
  return { code: ran.code, reply: ran.stdout.split("message received:\n")[1] ?? "" };
}

Deno.test({
  name: "kamailio: deploy/kamailio/sipdir.cfg answers OPTIONS from sipdir's Redis port (SIPp)",
  sanitizeResources: false,
  async fn(t) {
    const started = performance.now();
    const data = new Dataset(2000, 61);
    // Unknown AORs: some of the dump's shape (a known one with a digit more), some not.
    const unknown = [
      ...data.aors.slice(1, 251).map((aor) => `${aor}7`),
      ...Array.from({ length: 250 }, (_, i) => `unknown-${i}`),
    ];
    assertOk(unknown.every((aor) => !data.answers.has(aor)));
    // Known and unknown interleaved: four of the dump, then one unknown.
    const all: string[] = [];
    for (let i = 0, u = 0; i < data.aors.length; i++) {
      all.push(data.aors[i]);
      if (i % 4 === 3 && u < unknown.length) all.push(unknown[u++]);
    }
    assertEquals(all.length, 2500);

    const dir = await Deno.makeTempDir({ prefix: "sipdir-kamailio-" });
    const dump = await tempFile(data.text);
    let sipdir = await SipdirProcess.start([
      ...["-d", dump, "-p", "0", "--redis-port", "0", "--no-inspector-guard"],
      ...["--timeout", "1"],
    ]);
    let kamailio: Followed | undefined;
    try {
      const redisPort = Number(
        (await sipdir.waitFor(/Redis protocol on 127\.0\.0\.1:(\d+)/))[1],
      );
      const sipPort = await freeUdpPort();
      const config = `${dir}/sipdir.cfg`;
      await Deno.writeTextFile(
        config,
        loopbackConfig(await Deno.readTextFile(CONFIG), sipPort, redisPort),
      );
      await Deno.mkdir(`${dir}/run`);
      const syntax = await run("kamailio", ["-c", "-f", config], {
        timeoutMs: 20_000,
        debianPackage: "kamailio",
      });
      assertEquals(syntax.code, 0, `kamailio -c: ${syntax.stderr}`);
      // Foreground (-DD), logging to stderr (-E), its runtime files in dir.
      kamailio = new Followed(
        "kamailio",
        ["-f", config, "-DD", "-E", "-Y", `${dir}/run`, "-m", "64", "-M", "8"],
        "kamailio, kamailio-redis-modules",
      );

      await t.step("sipsak: Kamailio up; a sample hit and miss", async () => {
        // Until Kamailio listens, sipsak fails at once (3: ICMP port unreachable)
        // or gets no answer (2); then it retransmits until one comes.
        const deadline = Date.now() + 20_000;
        let miss = await sipsak(sipPort, "nobody");
        while (miss.code === 2 || miss.code === 3) {
          assertOk(Date.now() < deadline, `no answer from Kamailio:\n${kamailio!.output}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
          miss = await sipsak(sipPort, "nobody");
        }
        assertOk(miss.reply.startsWith("SIP/2.0 404 Not Found\r\n"), `${miss.code} ${miss.reply}`);
        for (const aor of [data.aors[0], data.aors[1234]]) {
          const hit = await sipsak(sipPort, aor);
          assertEquals(hit.code, 0, hit.reply);
          assertOk(hit.reply.startsWith("SIP/2.0 200 OK\r\n"), hit.reply);
          assertOk(
            hit.reply.includes(`\r\nX-Registration: ${data.answers.get(aor)}\r\n`),
            hit.reply,
          );
        }
      });

      await t.step("SIPp: 2000 AORs of the dump and 500 unknown ones, 500 per second", async () => {
        const before = await sipdir.counters();
        const result = await sipp(dir, "all", sipPort, all);
        const counts = check(result, all, data);
        const after = await sipdir.counters();
        console.log(
          `  requests ${counts.requests}, 200 ${counts.ok200}, 404 ${counts.ok404}, ` +
            `failures ${counts.failures}, in ${result.seconds.toFixed(1)} s; sipdir: ` +
            `${after["redis.hits"] - before["redis.hits"]} hits, ` +
            `${after["redis.misses"] - before["redis.misses"]} misses, ` +
            `${after.accepted - before.accepted} connections accepted, ` +
            `${after.idleClosed - before.idleClosed} closed idle`,
        );
        assertEquals([counts.ok200, counts.ok404], [2000, 500]);
        // A retransmitted OPTIONS is looked up again: at least, not exactly.
        assertOk(after["redis.hits"] - before["redis.hits"] >= 2000);
        assertOk(after["redis.misses"] - before["redis.misses"] >= 500);
      });

      await t.step("after a quiet spell past --timeout: the same connections serve", async () => {
        const before = await sipdir.counters();
        await new Promise((resolve) => setTimeout(resolve, 2500));
        const some = [...data.aors.slice(200, 300), ...unknown.slice(100, 200)];
        const counts = check(await sipp(dir, "quiet", sipPort, some), some, data);
        const after = await sipdir.counters();
        console.log(
          `  requests ${counts.requests}, 200 ${counts.ok200}, 404 ${counts.ok404}, ` +
            `failures ${counts.failures}; ${after.accepted - before.accepted} new connections`,
        );
        assertEquals([after.accepted, after.idleClosed], [before.accepted, before.idleClosed]);
      });

      await t.step("sipdir restarted on the same port: ndb_redis reconnects", async () => {
        sipdir.kill("SIGTERM");
        assertEquals((await sipdir.exit()).code, 0);
        sipdir = await SipdirProcess.start([
          ...["-d", dump, "-p", "0", "--redis-port", `127.0.0.1:${redisPort}`],
          ...["--redis-timeout", "1"],
        ]);
        await sipdir.port();
        const some = [...data.aors.slice(300, 400), ...unknown.slice(200, 300)];
        const counts = check(await sipp(dir, "restart", sipPort, some), some, data);
        const after = await sipdir.counters();
        console.log(
          `  requests ${counts.requests}, 200 ${counts.ok200}, 404 ${counts.ok404}, ` +
            `failures ${counts.failures}; ${after.accepted} connections to the new sipdir`,
        );
        assertOk(after.accepted > 0, "no reconnection");
      });

      await t.step("after sipdir closed every idle connection: ndb_redis reconnects", async () => {
        // --redis-timeout 1: wait (bounded) until no connection is open.
        const deadline = Date.now() + 15_000;
        let counters = await sipdir.counters();
        while (counters.open > 0) {
          assertOk(Date.now() < deadline, `connections still open: ${counters.open}`);
          await new Promise((resolve) => setTimeout(resolve, 250));
          counters = await sipdir.counters();
        }
        const some = [...data.aors.slice(100, 200), ...unknown.slice(0, 100)];
        const result = await sipp(dir, "reconnect", sipPort, some);
        const counts = check(result, some, data);
        const after = await sipdir.counters();
        console.log(
          `  requests ${counts.requests}, 200 ${counts.ok200}, 404 ${counts.ok404}, ` +
            `failures ${counts.failures}; ${after.accepted - counters.accepted} reconnections`,
        );
        assertOk(after.accepted > counters.accepted, "no reconnection");
        // ndb_redis logs each reconnection at ERROR level (the closed connection).
        const errors = kamailio!.output.split("\n").filter((line) => / ERROR: /.test(line));
        console.log(
          `  Kamailio's ERROR lines: ${errors.length}; the first: ${errors[0] ?? "none"}`,
        );
      });
      console.log(`  Kamailio test: ${((performance.now() - started) / 1000).toFixed(1)} s`);
    } finally {
      const status = await kamailio?.stop();
      if (status !== undefined && !status.success && status.signal !== "SIGTERM") {
        console.log(`kamailio exited ${JSON.stringify(status)}:\n${kamailio!.output.slice(-3000)}`);
      }
      sipdir.kill("SIGTERM");
      await sipdir.exit();
      await Deno.remove(dump);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
