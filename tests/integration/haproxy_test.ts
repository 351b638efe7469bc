/**
 * Three sipdir replicas behind a real HAProxy (Debian package `haproxy`,
 * 2.6) running `deploy/haproxy/haproxy.cfg` as shipped, with only its
 * addresses and ports changed to loopback ones picked here.
 *
 * Clients (several connections, each with requests in flight, reconnecting
 * when a connection closes and sending again what was not answered) look AORs
 * up through HAProxy's line frontend the whole time, while:
 *
 * 1. one replica is killed (SIGKILL) and later started again: only the
 *    requests in flight on its connections are lost, and their clients are
 *    served by the other replicas at once (the longest time a client went
 *    without an answer is measured, and must stay under one check interval);
 * 2. a rolling update replaces the dump: each replica in turn gets SIGTERM,
 *    exits 0, starts again on the same ports with the new dump, and the next
 *    one goes only once HAProxy has it up again. No request fails, and every
 *    answer afterwards comes from the new dump.
 *
 * Every answer is checked byte for byte. A last lookup goes through HAProxy's
 * Redis frontend with `redis-cli` (Debian package `redis-tools`).
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Dataset, LineClient, record, seededRandom, SipdirProcess } from "../helpers.ts";

const SHIPPED = new URL("../../deploy/haproxy/haproxy.cfg", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Client connections through HAProxy. */
const CLIENTS = 12;
/** Requests each client keeps in flight. */
const DEPTH = 2;
/** Requests per second each client sends at most: load without starving HAProxy's checks. */
const RATE = 400;
/** A request not answered this long after it was first sent counts as failed. */
const LATE_MS = 5000;

// ---------------------------------------------------------------- the data

/** The dump the replicas start with. */
const OLD = new Dataset(3000, 71);

/**
 * The dump of the rolling update: nine tenths of the old AORs with new
 * content (so that every answer tells which dump it came from), the last
 * tenth gone, and AORs of its own.
 */
function newDump(): { text: string; answers: Map<string, string>; only: string[] } {
  const answers = new Map<string, string>();
  for (const aor of OLD.aors.slice(0, 2700)) {
    answers.set(aor, OLD.answers.get(aor)!.replace(/}$/, ',"dump":"new"}'));
  }
  const extra = new Dataset(400, 72);
  const only = extra.aors.filter((aor) => !OLD.answers.has(aor));
  for (const aor of only) answers.set(aor, extra.answers.get(aor)!);
  return { text: [...answers.values()].join("\n") + "\n", answers, only };
}
const NEW = newDump();

/** Which dumps a request may be answered from, by when it was sent. */
type Era = "old" | "rolling" | "new";

/** The acceptable answers to `aor` sent during `era`. */
function acceptable(aor: string, era: Era): string[] {
  const old = OLD.answers.get(aor) ?? "";
  const fresh = NEW.answers.get(aor) ?? "";
  if (era === "old") return [old];
  if (era === "new") return [fresh];
  return [old, fresh];
}

// ------------------------------------------------------------ ports, config

/**
 * `count` distinct free ports below the kernel's ephemeral range, so that no
 * outgoing connection (HAProxy to a replica) takes one of them as its local
 * port while a replica that owns it is restarting.
 */
function pickPorts(count: number): number[] {
  const ports = new Set<number>();
  while (ports.size < count) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (ports.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      ports.add(port);
    } catch {
      // Taken; pick another.
    }
  }
  return [...ports];
}

/** One sipdir replica's ports. */
interface ReplicaPorts {
  name: string;
  line: number;
  redis: number;
  http: number;
}

/** What the loopback copy of the configuration listens on. */
interface Loopback {
  line: number;
  redis: number;
  stats: number;
  socket: string;
  replicas: ReplicaPorts[];
}

/**
 * The shipped configuration with its addresses and ports replaced: the
 * frontends' binds, each server's address and check port, the log target
 * and the stats socket. Nothing else changes (checked by the caller).
 */
function loopbackConfig(shipped: string, to: Loopback): string {
  let frontend = "";
  let backend = "";
  return shipped.split("\n").map((line) => {
    const section = line.match(/^(frontend|backend|global|defaults)\s*(\S*)/);
    if (section) {
      [frontend, backend] = section[1] === "frontend" ? [section[2], ""] : ["", section[2]];
      return line;
    }
    const bind = line.match(/^(\s+bind\s+)\S+(.*)$/);
    if (bind) {
      const port = { sipdir_line: to.line, sipdir_redis: to.redis, stats: to.stats }[frontend];
      if (port === undefined) throw new Error(`unexpected bind in frontend ${frontend}: ${line}`);
      return `${bind[1]}127.0.0.1:${port}${bind[2]}`;
    }
    const server = line.match(/^(\s+server\s+(\S+)\s+)\S+(.*?check port )\d+(.*)$/);
    if (server) {
      const replica = to.replicas.find((r) => r.name === server[2]);
      if (!replica) throw new Error(`no replica for ${line}`);
      const port = backend === "sipdir_line" ? replica.line : replica.redis;
      return `${server[1]}127.0.0.1:${port}${server[3]}${replica.http}${server[4]}`;
    }
    return line
      .replace(/^(\s+log\s+)\/dev\/log(\s)/, "$1stderr$2")
      .replace(/^(\s+stats socket\s+)\S+/, `$1${to.socket}`);
  }).join("\n");
}

/** A line with every address, port and socket path replaced by `ADDR`. */
function withoutAddresses(line: string): string {
  return line
    .replace(/(\d{1,3}(\.\d{1,3}){3})?:\d+\b/g, "ADDR")
    .replace(/\bport \d+\b/g, "port ADDR")
    .replace(/(log\s+)(\/dev\/log|stderr)/, "$1ADDR")
    .replace(/(stats socket\s+)\S+/, "$1ADDR");
}

/** The `default-server` line's value of `keyword` (e.g. `inter 1s`), in milliseconds. */
function serverSetting(config: string, keyword: string): number {
  const line = config.match(/^\s*default-server\s.*$/m)![0];
  const match = line.match(new RegExp(`\\s${keyword}\\s+(\\d+)(ms|s)?\\b`))!;
  return Number(match[1]) * (match[2] === "ms" ? 1 : match[2] === "s" ? 1000 : 1);
}

// ------------------------------------------------------------------ HAProxy

/** A running HAProxy: its process, the tail of its log, its stats page. */
class HAProxy {
  readonly child: Deno.ChildProcess;
  readonly statsPort: number;
  /** The last lines it logged (connections, health check changes). */
  log: string[] = [];
  /** Health check state changes it logged. */
  changes: string[] = [];
  /** Each server's state as last logged. */
  readonly #state = new Map<string, string>();

  constructor(configPath: string, statsPort: number) {
    this.statsPort = statsPort;
    this.child = new Deno.Command("haproxy", {
      // -db: stay in the foreground (the file says "daemon").
      args: ["-db", "-f", configPath],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    void this.#drain();
  }

  async #drain(): Promise<void> {
    let rest = "";
    for await (const chunk of this.child.stderr.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      for (const line of lines) {
        // From the log (not the [WARNING] copies on stderr): the checks that
        // completed a change of state, and changes made otherwise (a reason
        // after "is DOWN,": "Health analyze" is the observe layer4 rule).
        if (line.startsWith("[")) {
          // The [WARNING] copy.
        } else if (/status: (0\/\d+ DOWN|(\d+)\/\2 UP)\.?$/.test(line)) {
          const check = line.match(
            /Health check for server (\S+) \w+, reason: ([^,]+)(?:, code: (\d+))?(?:, info: "([^"]*)")?.*status: (.*?)\.?$/,
          );
          const state = check?.[5].split(" ")[1];
          if (check && (this.#state.get(check[1]) ?? "UP") !== state) {
            const [, server, reason, code, info, status] = check;
            this.#state.set(server, state!);
            this.changes.push(
              `${server}: ${reason}${code ? ` ${code}` : ""}${
                info ? ` (${info})` : ""
              } → ${status}`,
            );
          }
        } else {
          const other = line.match(/\]: Server (\S+) is (UP|DOWN), reason: .*$/);
          if (other) {
            this.#state.set(other[1], other[2]);
            this.changes.push(other[0].slice(3));
          }
        }
        this.log.push(line);
        if (this.log.length > 300) this.log.shift();
      }
    }
  }

  /** The stats page as CSV rows of the servers: "backend/server" → fields. */
  async stats(): Promise<Map<string, Record<string, string>>> {
    const response = await fetch(`http://127.0.0.1:${this.statsPort}/stats;csv`);
    const [header, ...rows] = (await response.text()).trim().split("\n");
    const names = header.replace(/^# /, "").split(",");
    const servers = new Map<string, Record<string, string>>();
    for (const row of rows) {
      const fields = Object.fromEntries(row.split(",").map((value, i) => [names[i], value]));
      if (fields.svname !== "FRONTEND" && fields.svname !== "BACKEND") {
        servers.set(`${fields.pxname}/${fields.svname}`, fields);
      }
    }
    return servers;
  }

  /** Waits until `server` is in `state` ("UP" or "DOWN") in `backends`; returns the ms taken. */
  async waitFor(
    server: string,
    state: "UP" | "DOWN",
    backends = ["sipdir_line", "sipdir_redis"],
    ms = 15_000,
  ): Promise<number> {
    const started = performance.now();
    const deadline = started + ms;
    for (;;) {
      const stats = await this.stats().catch(() => undefined);
      const states = backends.map((b) => stats?.get(`${b}/${server}`));
      if (states.every((s) => s?.status === state)) return performance.now() - started;
      if (performance.now() > deadline) {
        throw new Error(
          `${server} not ${state} in HAProxy after ${ms} ms: ${
            JSON.stringify(states.map((s) => [s?.status, s?.check_status]))
          }\n${this.log.slice(-30).join("\n")}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

// ------------------------------------------------------------------ clients

/** What the clients saw in one part of the test. */
class Tally {
  /** Requests answered (right or wrong). */
  answered = 0;
  /** Answers that were not what the dump says. */
  wrong = 0;
  /** Requests answered more than LATE_MS after they were first sent. */
  late = 0;
  /** Connections that closed under a client (not closed by the client). */
  closes = 0;
  /** Of those, connections closed before any answer. */
  closedUnanswered = 0;
  /** Requests in flight on connections that closed: sent again. */
  lostInFlight = 0;
  /** The longest time a client with a request in flight went without an answer, ms. */
  longestGap = 0;
  /** The first wrong answers, for the failure message. */
  examples: string[] = [];
}

interface Request {
  aor: string;
  era: Era;
  firstSent: number;
}

/** The load: CLIENTS connections through HAProxy's line frontend. */
class Load {
  era: Era = "old";
  tally = new Tally();
  readonly total = new Tally();
  #stopping = false;
  #aborted = false;
  readonly #open = new Set<Deno.TcpConn>();
  readonly #port: number;
  readonly #done: Promise<void>[] = [];
  readonly #random = seededRandom(7);

  constructor(port: number) {
    this.#port = port;
    for (let i = 0; i < CLIENTS; i++) this.#done.push(this.#client());
  }

  /** Starts counting in a new tally; returns the one that ends. */
  phase(): Tally {
    const ended = this.tally;
    this.tally = new Tally();
    return ended;
  }

  /** Stops sending, waits for every request in flight to be answered. */
  async stop(): Promise<Tally> {
    this.#stopping = true;
    await Promise.all(this.#done);
    return this.phase();
  }

  /** Gives up: closes every connection, answered or not (after a failure). */
  async abort(): Promise<void> {
    this.#stopping = this.#aborted = true;
    for (const conn of this.#open) conn.close();
    await Promise.all(this.#done);
  }

  #next(): Request {
    const r = this.#random();
    let aor: string;
    if (r < 0.8) aor = OLD.aors[Math.floor(this.#random() * OLD.aors.length)];
    else if (r < 0.9) aor = NEW.only[Math.floor(this.#random() * NEW.only.length)];
    else aor = `unknown-${Math.floor(this.#random() * 1e9)}`;
    return { aor, era: this.era, firstSent: performance.now() };
  }

  #count(update: (t: Tally) => void): void {
    update(this.tally);
    update(this.total);
  }

  async #client(): Promise<void> {
    let carried: Request[] = [];
    let sent = 0;
    const started = performance.now();
    while (!this.#aborted && (!this.#stopping || carried.length > 0)) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: this.#port });
      this.#open.add(conn);
      const inFlight: Request[] = [];
      let answers = 0;
      let lastProgress = performance.now();
      let buffer = new Uint8Array(0);
      const chunk = new Uint8Array(64 * 1024);
      try {
        const send = async (requests: Request[]) => {
          if (inFlight.length === 0) lastProgress = performance.now();
          inFlight.push(...requests);
          const bytes = encoder.encode(requests.map((r) => r.aor + "\n").join(""));
          for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
        };
        if (carried.length > 0) await send(carried.splice(0));
        for (;;) {
          // Fill the pipeline, at RATE at most.
          while (!this.#stopping && inFlight.length < DEPTH) {
            const due = started + (sent * 1000) / RATE;
            const wait = due - performance.now();
            if (wait > 0) {
              if (inFlight.length > 0) break;
              await new Promise((resolve) => setTimeout(resolve, wait));
              continue;
            }
            sent++;
            await send([this.#next()]);
          }
          if (inFlight.length === 0) break; // stopping, nothing left
          const n = await conn.read(chunk);
          if (n === null) throw new Error("closed");
          const joined = new Uint8Array(buffer.length + n);
          joined.set(buffer);
          joined.set(chunk.subarray(0, n), buffer.length);
          let start = 0;
          for (let lf = joined.indexOf(0x0a); lf >= 0; lf = joined.indexOf(0x0a, start)) {
            const answer = decoder.decode(joined.subarray(start, lf));
            start = lf + 1;
            const request = inFlight.shift();
            const now = performance.now();
            const gap = now - lastProgress;
            lastProgress = now;
            answers++;
            this.#count((t) => {
              t.answered++;
              t.longestGap = Math.max(t.longestGap, gap);
            });
            if (request === undefined) {
              this.#count((t) => t.wrong++);
              continue;
            }
            if (!acceptable(request.aor, request.era).includes(answer)) {
              this.#count((t) => {
                t.wrong++;
                if (t.examples.length < 3) {
                  t.examples.push(`${request.era} ${request.aor} → ${answer.slice(0, 80)}`);
                }
              });
            }
            if (now - request.firstSent > LATE_MS) this.#count((t) => t.late++);
          }
          buffer = joined.slice(start);
        }
        this.#open.delete(conn);
        conn.close();
      } catch {
        // Closed (EOF, reset, broken pipe): send what is in flight again.
        this.#open.delete(conn);
        try {
          conn.close();
        } catch {
          // Already closed.
        }
        const lost = inFlight.length;
        this.#count((t) => {
          t.closes++;
          t.lostInFlight += lost;
          if (answers === 0) t.closedUnanswered++;
        });
        carried = inFlight.splice(0);
      }
    }
  }
}

/** Resolves after `ms` of load. */
function loadFor(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// --------------------------------------------------------------------- test

/** A replica: its ports, data file, the journal all replicas follow, and its process. */
interface Replica extends ReplicaPorts {
  data: string;
  journal: string;
  process?: SipdirProcess;
}

async function startReplica(replica: Replica): Promise<void> {
  replica.process = await SipdirProcess.start([
    "--journal",
    replica.journal,
    "--data",
    replica.data,
    "--ip",
    "127.0.0.1",
    "--port",
    String(replica.line),
    "--redis-port",
    String(replica.redis),
    "--http-port",
    String(replica.http),
  ]);
  await replica.process.waitFor(/Redis protocol on /);
}

Deno.test("haproxy: 3 replicas, a SIGKILL and a rolling update under load", async () => {
  const testStarted = performance.now();
  const shipped = await Deno.readTextFile(SHIPPED);
  const checked = await new Deno.Command("haproxy", { args: ["-c", "-f", SHIPPED] }).output();
  assertEquals(checked.code, 0, decoder.decode(checked.stderr));

  const dir = await Deno.makeTempDir({ prefix: "sipdir-haproxy-" });
  const ports = pickPorts(12);
  const names = [...shipped.matchAll(/^\s+server\s+(\S+)\s/gm)].map((m) => m[1]);
  const replicas: Replica[] = [...new Set(names)].map((name, i) => ({
    name,
    line: ports[3 + 3 * i],
    redis: ports[4 + 3 * i],
    http: ports[5 + 3 * i],
    data: `${dir}/${name}.regs`,
    // One journal on a volume they share, as in deploy/kubernetes.
    journal: `${dir}/journal`,
  }));
  assertEquals(replicas.length, 3, `servers in the shipped file: ${names}`);
  const loopback: Loopback = {
    line: ports[0],
    redis: ports[1],
    stats: ports[2],
    socket: `${dir}/haproxy.sock`,
    replicas,
  };
  const config = loopbackConfig(shipped, loopback);
  // What runs is what ships: the same lines, once addresses and ports are set aside.
  assertEquals(config.split("\n").map(withoutAddresses), shipped.split("\n").map(withoutAddresses));
  const configPath = `${dir}/haproxy.cfg`;
  await Deno.writeTextFile(configPath, config);
  const inter = serverSetting(shipped, "inter");
  const fall = serverSetting(shipped, "fall");

  let haproxy: HAProxy | undefined;
  let load: Load | undefined;
  try {
    await Deno.writeTextFile(`${dir}/journal`, "");
    for (const replica of replicas) await Deno.writeTextFile(replica.data, OLD.text);
    await Promise.all(replicas.map(startReplica));
    haproxy = new HAProxy(configPath, loopback.stats);
    for (const replica of replicas) await haproxy.waitFor(replica.name, "UP");

    // Steady load from the old dump.
    load = new Load(loopback.line);
    await loadFor(2000);
    const steady = load.phase();

    // (b) SIGKILL one replica mid-load.
    const victim = replicas[1];
    const before = await haproxy.stats();
    const victimConnections = Number(before.get(`sipdir_line/${victim.name}`)!.scur);
    const killedAt = performance.now();
    victim.process!.kill("SIGKILL");
    const killed = await victim.process!.child.status;
    assertEquals(killed.signal, "SIGKILL");
    await haproxy.waitFor(victim.name, "DOWN", ["sipdir_line"]);
    const lineDown = performance.now() - killedAt;
    await haproxy.waitFor(victim.name, "DOWN");
    const markedDown = performance.now() - killedAt;
    await loadFor(1000);
    const kill = load.phase();
    const killWindow = performance.now() - killedAt;
    await victim.process!.exit();
    await startReplica(victim);
    await haproxy.waitFor(victim.name, "UP");
    await loadFor(500);
    const recovery = load.phase();

    // (c) Rolling update to the new dump, one replica at a time.
    load.era = "rolling";
    const steps: string[] = [];
    for (const replica of replicas) {
      const stopAt = performance.now();
      const down = haproxy.waitFor(replica.name, "DOWN").then(() => performance.now() - stopAt);
      replica.process!.kill("SIGTERM");
      const { code } = await replica.process!.exit();
      assertEquals(code, 0, `${replica.name} exit status after SIGTERM`);
      const exited = performance.now() - stopAt;
      const downAfter = await down;
      await Deno.writeTextFile(`${replica.data}.new`, NEW.text);
      await Deno.rename(`${replica.data}.new`, replica.data);
      await startReplica(replica);
      const up = await haproxy.waitFor(replica.name, "UP");
      steps.push(
        `${replica.name}: SIGTERM; down in HAProxy after ${downAfter.toFixed(0)} ms, exit 0 after ${
          exited.toFixed(0)
        } ms; restarted with the new dump, up in HAProxy ${up.toFixed(0)} ms after it listened`,
      );
    }
    const rolling = load.phase();
    load.era = "new";
    await loadFor(1500);
    const after = await load.stop();
    load = undefined;

    // One lookup through the Redis frontend, with the real redis-cli.
    const aor = OLD.aors[5];
    const cli = await new Deno.Command("redis-cli", {
      args: ["-h", "127.0.0.1", "-p", String(loopback.redis), "GET", aor],
    }).output();
    const redisAnswer = decoder.decode(cli.stdout).replace(/\n$/, "");

    // A change appended to the journal they share: every replica answers it,
    // on both ports, and so does every connection through HAProxy.
    const added = record("journal-added", { contact: "<sip:journal-added@192.0.2.9>" });
    await Deno.writeTextFile(`${dir}/journal`, `{"seq":1,"put":${added}}\n`, { append: true });
    const seenBy: string[] = [];
    /** Asks `port` until it answers the change (5 s at most): redis-cli, or a line client. */
    const asked = async (port: number, redis: boolean) => {
      const deadline = Date.now() + 5000;
      for (;;) {
        let answer: string;
        if (redis) {
          const output = await new Deno.Command("redis-cli", {
            args: ["-h", "127.0.0.1", "-p", String(port), "GET", "journal-added"],
          }).output();
          answer = decoder.decode(output.stdout).trim();
        } else {
          const client = await LineClient.connect(port);
          await client.send("journal-added\n");
          answer = await client.line();
          client.close();
        }
        if (answer === added) return;
        assertOk(Date.now() < deadline, `port ${port} does not answer the journal's change`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    for (const replica of replicas) {
      await asked(replica.line, false);
      await asked(replica.redis, true);
      seenBy.push(replica.name);
    }
    for (let i = 0; i < 6; i++) {
      await asked(loopback.line, false);
      await asked(loopback.redis, true);
    }
    const missing = await new Deno.Command("redis-cli", {
      args: ["-h", "127.0.0.1", "-p", String(loopback.redis), "EXISTS", "unknown-aor"],
    }).output();

    const stats = await haproxy.stats();
    const spread = replicas.map((r) => `${r.name} ${stats.get(`sipdir_line/${r.name}`)!.stot}`);
    const seconds = ((performance.now() - testStarted) / 1000).toFixed(1);
    const row = (name: string, t: Tally) =>
      `  ${
        name.padEnd(9)
      } answered ${t.answered}, wrong ${t.wrong}, late ${t.late}, closes ${t.closes} (${t.closedUnanswered} before any answer), in flight lost and sent again ${t.lostInFlight}, longest gap ${
        t.longestGap.toFixed(0)
      } ms`;
    console.log(
      [
        `  ${CLIENTS} clients, ${DEPTH} in flight each, up to ${RATE}/s each; HAProxy inter ${inter} ms, fall ${fall}`,
        row("steady", steady),
        row("kill", kill),
        row("recovery", recovery),
        row("rolling", rolling),
        row("after", after),
        `  SIGKILL of ${victim.name} with ${victimConnections} client connections on it; HAProxy marked it down ${
          lineDown.toFixed(0)
        } ms after the kill in the line backend (which has traffic), ${
          markedDown.toFixed(0)
        } ms in both; kill window ${killWindow.toFixed(0)} ms`,
        ...steps.map((s) => `  ${s}`),
        `  connections per replica (HAProxy stot, line): ${spread.join(", ")}`,
        `  HAProxy health changes:\n${haproxy.changes.map((c) => `    ${c}`).join("\n")}`,
        `  redis-cli GET through HAProxy: ${
          redisAnswer === NEW.answers.get(aor) ? "the new dump's line" : redisAnswer
        }`,
        `  a journal change answered by ${seenBy.join(", ")} (both ports) and through HAProxy`,
        `  counts: requests ${
          steady.answered + kill.answered +
          recovery.answered + rolling.answered + after.answered
        }, in-flight losses at the kill ${kill.lostInFlight}, failures during the rolling update ${
          rolling.wrong + rolling.late
        }, longest client gap at the kill ${kill.longestGap.toFixed(0)} ms (rolling ${
          rolling.longestGap.toFixed(0)
        } ms); test ${seconds} s`,
      ].join("\n"),
    );

    for (const [name, t] of Object.entries({ steady, kill, recovery, rolling, after })) {
      assertEquals(t.wrong, 0, `${name}: wrong answers: ${t.examples.join("; ")}`);
      assertEquals(t.late, 0, `${name}: requests answered after ${LATE_MS} ms`);
    }
    assertEquals(steady.closes, 0, "no connection closed before the kill");
    // Only the victim's connections closed, and only what was in flight on them was lost.
    // Connections that had been answered and then closed were the victim's.
    // A connection can also close before any answer: HAProxy connected it
    // to the victim in the instant it died (the kernel completed the
    // handshake; the process never accepted it), which is a lost request in
    // flight too (seen once in about 15 runs).
    const answeredThenClosed = kill.closes - kill.closedUnanswered;
    assertOk(answeredThenClosed >= 1, "the kill closed connections");
    assertOk(
      answeredThenClosed <= victimConnections && kill.closedUnanswered <= victimConnections,
      `${kill.closes} connections closed (${kill.closedUnanswered} before any answer), ${victimConnections} were on ${victim.name}`,
    );
    assertOk(kill.lostInFlight <= kill.closes * DEPTH, `lost ${kill.lostInFlight}`);
    assertOk(
      kill.longestGap < inter,
      `a client went ${
        kill.longestGap.toFixed(0)
      } ms without an answer (check interval ${inter} ms)`,
    );
    assertOk(after.answered > 0 && rolling.answered > 0);
    assertEquals(redisAnswer, NEW.answers.get(aor));
    assertEquals(decoder.decode(missing.stdout).trim(), "0");
  } finally {
    await load?.abort();
    for (const replica of replicas) {
      replica.process?.kill("SIGKILL");
      await replica.process?.exit().catch(() => {});
    }
    if (haproxy) {
      try {
        haproxy.child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      await haproxy.child.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
});
