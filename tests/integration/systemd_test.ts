/**
 * deploy/sipdir.service under a real systemd: Debian 12 (systemd 252) booted
 * with systemd-nspawn, the unit installed by the install steps in its header
 * comment (those of the README), `/usr/local/bin/sipdir` a stand-in that runs
 * main.ts with the compile task's flags. Checks start, lookups, reload (good
 * and bad dumps), SIGUSR1, SIGKILL and restart, --log, the sandbox, and a
 * draining stop. Everything happens inside the container (its own network
 * namespace: loopback only).
 *
 * Needs root, systemd-nspawn and debootstrap; fails (does not skip) without
 * them. The first run builds a Debian root with debootstrap (a minute or two,
 * from deb.debian.org) and caches it in /var/tmp/sipdir-systemd.
 */

import { assertEquals, assertOk } from "../assert.ts";
import { Dataset } from "../../testing/data.ts";
import { EXAMPLE_RECORD } from "../../testing/gen_regs.ts";
import {
  checkPrerequisites,
  Container,
  ensureRootfs,
  type FollowedOutput,
  type FollowedProcess,
  prepareDenoDir,
  SIPDIR_MOUNTS,
  sipdirBinds,
  sipdirStandIn,
} from "../../testing/nspawn.ts";
import { LAUNCH_ENV } from "../../testing/sipdir_process.ts";

const SOURCE = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const LINE_CLIENT = new URL("../../testing/line_client.ts", import.meta.url).href;
const EXAMPLE_AOR = "0142e2fa3543cb32bf000100620002";
const PORT = 1234;
const DATA = "/var/lib/sipdir/regs";
const DROP_IN_DIR = "/etc/systemd/system/sipdir.service.d";
const EXEC_START = `/usr/local/bin/sipdir --data ${DATA} --ip 127.0.0.1 --port ${PORT}`;
/** Where the release is unpacked in the container: the install steps run there. */
const RELEASE = "/root/sipdir-release";

/** The install commands listed at the top of deploy/sipdir.service (`#   command`). */
async function installSteps(): Promise<string[]> {
  const unit = await Deno.readTextFile(`${SOURCE}/deploy/sipdir.service`);
  const header = unit.slice(0, unit.search(/^\[Unit\]/m));
  return [...header.matchAll(/^# {3}(\S.*)$/gm)].map((m) => m[1]);
}

/** Answers to `requests` (one line each), asked over one connection to sipdir in the container. */
async function lookup(container: Container, requests: string[]): Promise<string[]> {
  const code = `
    import { LineClient } from ${JSON.stringify(LINE_CLIENT)};
    const client = await LineClient.connect(${PORT});
    try {
      await client.send(${JSON.stringify(requests.map((r) => r + "\n").join(""))});
      console.log(JSON.stringify(await client.lines(${requests.length})));
    } finally {
      client.close();
    }`;
  const result = await container.execInNetwork([Deno.execPath(), "eval", code], {
    timeoutMs: 20_000,
  });
  if (result.code !== 0) throw new Error(`lookup failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * What answers `GET /json/version` on the inspector's address in the
 * container: the body, or why there is none (refused, closed at once).
 */
async function probeInspector(container: Container): Promise<{ body?: string; error?: string }> {
  const code = `
    try {
      const response = await fetch("http://127.0.0.1:9229/json/version", {
        signal: AbortSignal.timeout(5000),
      });
      console.log(JSON.stringify({ body: await response.text() }));
    } catch (error) {
      console.log(JSON.stringify({ error: [error, error.cause].filter(Boolean).join(": ") }));
    }`;
  const result = await container.execInNetwork([Deno.execPath(), "eval", code], {
    timeoutMs: 20_000,
  });
  if (result.code !== 0) throw new Error(`inspector probe failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/** A V8 inspector's answer to /json/version. */
function isInspector(probe: { body?: string }): boolean {
  return probe.body !== undefined && /"V8-Version"/.test(probe.body);
}

/** `systemctl show` properties of sipdir.service. */
async function show(
  container: Container,
  ...properties: string[]
): Promise<Record<string, string>> {
  const out = await container.execOk([
    "systemctl",
    "show",
    "sipdir",
    ...properties.map((p) => `--property=${p}`),
  ]);
  return Object.fromEntries(
    out.trim().split("\n").map((
      line,
    ) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

/**
 * Replaces the unit's ExecStart= with a drop-in, with `more` [Service]
 * lines (or removes the drop-in), then daemon-reload.
 */
async function overrideExecStart(
  container: Container,
  execStart: string | undefined,
  more: string[] = [],
): Promise<void> {
  if (execStart === undefined) {
    await container.sh(`rm -rf ${DROP_IN_DIR}`);
  } else {
    await container.sh(`mkdir -p ${DROP_IN_DIR}`);
    await container.writeFile(
      `${DROP_IN_DIR}/test.conf`,
      ["[Service]", "ExecStart=", `ExecStart=${execStart}`, ...more, ""].join("\n"),
    );
  }
  await container.execOk(["systemctl", "daemon-reload"]);
}

/** Starts (or restarts) sipdir and waits for it to listen on `port`; resolves to its MainPID. */
async function startServing(
  container: Container,
  journal: FollowedOutput,
  port = PORT,
): Promise<number> {
  const from = journal.mark();
  await container.execOk(["systemctl", "restart", "sipdir"], { timeoutMs: 30_000 });
  await journal.waitFor(new RegExp(`listening on 127\\.0\\.0\\.1:${port}\\n`), {
    from,
    timeoutMs: 30_000,
  });
  return Number((await show(container, "MainPID")).MainPID);
}

Deno.test("systemd: the unit installs, serves, reloads, restarts and stops under systemd 252", async (t) => {
  // Not a skip: CI installs these (.ci/run), so their absence is a failure.
  await checkPrerequisites();
  const started = Date.now();
  const rootfs = await ensureRootfs({ log: (message) => console.log(message) });
  console.log(
    rootfs.built
      ? `built ${rootfs.path} in ${(rootfs.buildMs / 1000).toFixed(1)} s`
      : `cached root: ${rootfs.path}`,
  );
  const denoDir = await prepareDenoDir(SOURCE);
  let container: Container | undefined;
  let journal: FollowedProcess | undefined;
  try {
    container = await Container.boot({ root: rootfs.path, binds: sipdirBinds(SOURCE, denoDir) });
    const c = container;
    console.log(`container up after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // sipdir's stderr and systemd's messages about the unit, from before it exists.
    journal = c.follow(["journalctl", "--follow", "--lines=all", "--output=cat", "--unit=sipdir"]);
    const log = journal.output;
    const original = (await Deno.readTextFile(`${SOURCE}/data/regs`)).split("\n");
    const originalAor = JSON.parse(original[1]).addressOfRecord as string;
    const fresh = new Dataset(1000, 2);
    let mainPid = 0;
    let failures = 0;
    const step = async (name: string, fn: () => void | Promise<void>) => {
      if (!await t.step(name, fn)) failures++;
    };

    const installed = await t.step(
      "install as the unit's header (and the README) says, enable --now",
      async () => {
        const steps = await installSteps();
        assertOk(
          steps.some((s) => /install .*\/usr\/local\/bin\/sipdir/.test(s)),
          steps.join("\n"),
        );
        assertOk(steps.some((s) => /enable --now sipdir/.test(s)), steps.join("\n"));
        // The release: the binary (here the stand-in), a dump, the README, the unit.
        await c.sh(`mkdir -p ${RELEASE}/deploy`);
        await c.writeFile(`${RELEASE}/sipdir`, await sipdirStandIn());
        await c.sh(
          `cd ${RELEASE} && cp ${SIPDIR_MOUNTS.source}/data/regs regs.jsonl && ` +
            `cp ${SIPDIR_MOUNTS.source}/README.md README.md && ` +
            `cp ${SIPDIR_MOUNTS.source}/deploy/sipdir.service deploy/sipdir.service`,
        );
        const from = log.mark();
        await c.sh(`cd ${RELEASE}\n${steps.join("\n")}`, { timeoutMs: 60_000 });
        const up = await log.waitFor(
          /listening on 127\.0\.0\.1:1234\n|Main process exited, (.*)\n/,
          {
            from,
            timeoutMs: 30_000,
          },
        );
        assertOk(up[1] === undefined, `sipdir exited at start: ${up[0]}`);
        const state = await show(c, "ActiveState", "SubState", "UnitFileState", "MainPID");
        assertEquals([state.ActiveState, state.SubState, state.UnitFileState], [
          "active",
          "running",
          "enabled",
        ]);
        mainPid = Number(state.MainPID);
        assertOk(mainPid > 0);
      },
    );
    if (!installed) {
      // Every check below needs a running sipdir: waiting for each to time out helps nobody.
      const sys = /status=31\/SYS/.test(log.text)
        ? ": killed by the system call filter (status=31/SYS)"
        : "";
      throw new Error(`sipdir.service did not come up${sys}`);
    }

    await step("answers lookups over TCP", async () => {
      assertEquals(await lookup(c, [EXAMPLE_AOR, "unknown", originalAor]), [
        EXAMPLE_RECORD,
        "",
        original[1],
      ]);
    });

    await step("runs as a dynamic user, not root, without capabilities", async () => {
      const props = await show(c, "User", "DynamicUser", "MainPID");
      assertEquals([props.User, props.DynamicUser], ["sipdir", "yes"]);
      const status = await c.execOk(["cat", `/proc/${props.MainPID}/status`]);
      const uid = Number(status.match(/^Uid:\s+(\d+)/m)?.[1]);
      assertOk(uid > 0, `MainPID ${props.MainPID} runs as uid ${uid}`);
      // No capabilities (CapabilityBoundingSet=), no way to gain any (NoNewPrivileges=).
      assertEquals(status.match(/^CapEff:\s+(\S+)/m)?.[1], "0000000000000000");
      assertEquals(status.match(/^NoNewPrivs:\s+(\S+)/m)?.[1], "1");
      // The state directory is the dynamic user's, behind /var/lib/private.
      assertEquals((await c.execOk(["readlink", "/var/lib/sipdir"])).trim(), "private/sipdir");
      assertEquals(
        (await c.execOk(["stat", "-c", "%u", "/var/lib/private/sipdir"])).trim(),
        `${uid}`,
      );
    });

    await step(
      "the unit's Environment= reaches sipdir: glibc is asked for huge pages",
      async () => {
        const { MainPID } = await show(c, "MainPID");
        const environ = (await c.execOk(["cat", `/proc/${MainPID}/environ`])).split("\0");
        for (const [name, value] of Object.entries(LAUNCH_ENV)) {
          assertOk(
            environ.includes(`${name}=${value}`),
            `${name}=${value} in ${environ.join(" ")}`,
          );
        }
      },
    );

    await step("the journal holds sipdir's log lines; Documentation= exists", async () => {
      await log.waitFor(
        /INFO \S+ \S+ sipdir\[\d+\]: loaded 995 entries \(5 duplicates\) from \/var\/lib\/sipdir\/regs/,
      );
      await log.waitFor(/INFO \S+ \S+ sipdir\[\d+\]: listening on 127\.0\.0\.1:1234/);
      const docs = (await show(c, "Documentation")).Documentation;
      assertEquals(docs, "file:/usr/share/doc/sipdir/README.md");
      await c.execOk(["test", "-s", docs.slice("file:".length)]);
    });

    await step("systemctl reload serves a new dump", async () => {
      await c.writeFile(`${DATA}.new`, fresh.text);
      await c.execOk(["mv", `${DATA}.new`, DATA]);
      const from = log.mark();
      await c.execOk(["systemctl", "reload", "sipdir"], { timeoutMs: 30_000 });
      await log.waitFor(/reloaded \/var\/lib\/sipdir\/regs: 1000 entries \(0 duplicates\)/, {
        from,
      });
      assertEquals(await lookup(c, [fresh.aors[1], originalAor, EXAMPLE_AOR]), [
        fresh.answer(fresh.aors[1]),
        "",
        EXAMPLE_RECORD,
      ]);
      assertEquals(Number((await show(c, "MainPID")).MainPID), mainPid);
    });

    await step("a reload of a bad dump keeps the previous data", async () => {
      const lines = fresh.text.split("\n");
      lines[16] = '{"addressOfRecord":"broken",}';
      await c.writeFile(`${DATA}.new`, lines.join("\n"));
      await c.execOk(["mv", `${DATA}.new`, DATA]);
      const from = log.mark();
      await c.execOk(["systemctl", "reload", "sipdir"], { timeoutMs: 30_000 });
      await log.waitFor(
        /reload failed, still serving the previous data: \/var\/lib\/sipdir\/regs:17: /,
        { from },
      );
      assertEquals(await lookup(c, [fresh.aors[2]]), [fresh.answer(fresh.aors[2])]);
      assertEquals((await show(c, "ActiveState")).ActiveState, "active");
      // A good file again, for the restarts below.
      await c.writeFile(`${DATA}.new`, fresh.text);
      await c.execOk(["mv", `${DATA}.new`, DATA]);
    });

    await step("SIGUSR1 opens no inspector; sipdir keeps serving", async () => {
      const from = log.mark();
      await c.execOk(["systemctl", "kill", "--signal=USR1", "sipdir"]);
      await log.waitFor(/Failed to start inspector server/, { from });
      const probe = await probeInspector(c);
      assertOk(!isInspector(probe), `an inspector answered: ${probe.body}`);
      console.log(`  127.0.0.1:9229 after SIGUSR1: ${probe.error ?? probe.body}`);
      assertEquals(await lookup(c, [fresh.aors[3]]), [fresh.answer(fresh.aors[3])]);
      assertEquals(Number((await show(c, "MainPID")).MainPID), mainPid);
    });

    await step("systemctl kill -s KILL is followed by a restart", async () => {
      const from = log.mark();
      await c.execOk(["systemctl", "kill", "--signal=KILL", "sipdir"]);
      await log.waitFor(/Main process exited, code=killed, status=9\/KILL/, { from });
      await log.waitFor(/Scheduled restart job/, { from });
      await log.waitFor(/listening on 127\.0\.0\.1:1234\n/, { from, timeoutMs: 30_000 });
      const props = await show(c, "MainPID", "ActiveState", "NRestarts");
      assertOk(Number(props.MainPID) > 0 && Number(props.MainPID) !== mainPid, props.MainPID);
      assertEquals([props.ActiveState, props.NRestarts], ["active", "1"]);
      mainPid = Number(props.MainPID);
      assertEquals(await lookup(c, [fresh.aors[4]]), [fresh.answer(fresh.aors[4])]);
    });

    await step("--log into the state directory works", async () => {
      const path = "/var/lib/sipdir/sipdir.log";
      await overrideExecStart(c, `${EXEC_START} --log ${path}`);
      const tail = c.follow(["tail", "--lines=+1", "--follow=name", "--retry", path]);
      try {
        await c.execOk(["systemctl", "restart", "sipdir"], { timeoutMs: 30_000 });
        await tail.output.waitFor(/INFO \S+ \S+ sipdir\[\d+\]: listening on 127\.0\.0\.1:1234\n/, {
          timeoutMs: 30_000,
        });
      } finally {
        await tail.stop();
      }
      const uid = (await c.execOk(["stat", "-c", "%u", "/var/lib/private/sipdir"])).trim();
      // Owned by the dynamic user; UMask=0077.
      assertEquals((await c.execOk(["stat", "-c", "%u %a", path])).trim(), `${uid} 600`);
      assertEquals(await lookup(c, [fresh.aors[5]]), [fresh.answer(fresh.aors[5])]);
    });

    await step(
      "under the filter too: --watch, --http-port, --redis-port with a password, --log-format json",
      async () => {
        // The password as the unit's comments say: a root-only file, handed
        // to the dynamic user as a credential (%d: its credentials directory).
        await c.execOk([
          "sh",
          "-c",
          "mkdir -p /etc/sipdir && (umask 077 && printf 's3cret\\n' > /etc/sipdir/redis-password)",
        ]);
        await overrideExecStart(
          c,
          `${EXEC_START} --watch --http-port 9100 --redis-port 6379 ` +
            "--redis-password-file %d/redis-password --log-format json",
          ["LoadCredential=redis-password:/etc/sipdir/redis-password"],
        );
        const from = log.mark();
        await c.execOk(["systemctl", "restart", "sipdir"], { timeoutMs: 30_000 });
        await log.waitFor(
          /"message":"Redis protocol on .*"address":"127\.0\.0\.1:6379","auth":"required"/,
          {
            from,
            timeoutMs: 30_000,
          },
        );
        const code = `
          const get = async (path) => {
            const response = await fetch("http://127.0.0.1:9100" + path);
            return [response.status, await response.text()];
          };
          const conn = await Deno.connect({ hostname: "127.0.0.1", port: 6379 });
          const aor = ${JSON.stringify(fresh.aors[8])};
          await conn.write(new TextEncoder().encode(
            "*2\\r\\n$4\\r\\nAUTH\\r\\n$6\\r\\ns3cret\\r\\n*2\\r\\n$3\\r\\nGET\\r\\n$" + aor.length + "\\r\\n" + aor + "\\r\\n"));
          const buf = new Uint8Array(4096); let text = "";
          while (!text.endsWith("}\\r\\n")) { const n = await conn.read(buf); if (n === null) break; text += new TextDecoder().decode(buf.subarray(0, n)); }
          conn.close();
          console.log(JSON.stringify({ readyz: await get("/readyz"), metrics: (await get("/metrics"))[1], redis: text }));`;
        const result = await c.execInNetwork([Deno.execPath(), "eval", code], {
          timeoutMs: 20_000,
        });
        assertEquals(result.code, 0, result.stderr);
        const seen = JSON.parse(result.stdout);
        assertEquals(seen.readyz, [200, "ready\n"]);
        assertOk(seen.metrics.includes("sipdir_directory_entries "), seen.metrics);
        const answer = fresh.answer(fresh.aors[8]);
        assertEquals(
          seen.redis,
          `+OK\r\n$${new TextEncoder().encode(answer).length}\r\n${answer}\r\n`,
        );
        // --watch: a dump renamed into place is reloaded without a signal.
        const renamed = log.mark();
        await c.execOk([
          "sh",
          "-c",
          "cp /var/lib/sipdir/regs /var/lib/sipdir/regs.new && mv /var/lib/sipdir/regs.new /var/lib/sipdir/regs",
        ]);
        await log.waitFor(/"message":"reloaded /, { from: renamed, timeoutMs: 30_000 });
        await overrideExecStart(c, undefined);
        await c.execOk(["systemctl", "restart", "sipdir"], { timeoutMs: 30_000 });
      },
    );

    await step(
      "cannot write outside its state directory: --log /etc/… fails, naming the file",
      async () => {
        for (const path of ["/etc/sipdir.log", "/var/log/sipdir.log"]) {
          await overrideExecStart(c, `${EXEC_START} --log ${path}`);
          const from = log.mark();
          await c.execOk(["systemctl", "restart", "sipdir"], { timeoutMs: 30_000 });
          const escaped = path.replaceAll("/", "\\/").replaceAll(".", "\\.");
          const match = await log.waitFor(
            new RegExp(`sipdir: cannot open log file ${escaped}: (.*)\\n`),
            {
              from,
              timeoutMs: 30_000,
            },
          );
          console.log(`  ${match[0].trim()}`);
          await log.waitFor(/Main process exited, code=exited, status=1\/FAILURE/, { from });
          await c.execOk(["systemctl", "stop", "sipdir"], { timeoutMs: 30_000 });
          await c.execOk(["systemctl", "reset-failed", "sipdir"]);
          assertEquals((await c.exec(["test", "-e", path])).code, 1, `${path} was created`);
        }
        await overrideExecStart(c, undefined);
      },
    );

    await step(
      "SocketBindAllow=/SocketBindDeny= in effect only with cgroup v2 and BPF (measured)",
      async () => {
        const version = await c.execOk(["systemctl", "--version"]);
        const fsType = (await c.execOk(["stat", "-f", "-c", "%T", "/sys/fs/cgroup"])).trim();
        const enforced = /\+BPF_FRAMEWORK/.test(version) && fsType === "cgroup2fs";
        // A port that SocketBindAllow= does not list.
        await overrideExecStart(
          c,
          `/usr/local/bin/sipdir --data ${DATA} --ip 127.0.0.1 --port 1235`,
        );
        let from = log.mark();
        await c.execOk(["systemctl", "restart", "sipdir"], { timeoutMs: 30_000 });
        const bound = await log.waitFor(/(listening on|cannot listen on) 127\.0\.0\.1:1235/, {
          from,
          timeoutMs: 30_000,
        });
        await c.execOk(["systemctl", "stop", "sipdir"], { timeoutMs: 30_000 });
        await c.execOk(["systemctl", "reset-failed", "sipdir"]);
        // The inspector without sipdir's guard.
        await overrideExecStart(c, `${EXEC_START} --no-inspector-guard`);
        await startServing(c, log);
        from = log.mark();
        await c.execOk(["systemctl", "kill", "--signal=USR1", "sipdir"]);
        await log.waitFor(/Debugger listening on|Failed to start inspector server/, { from });
        const probe = await probeInspector(c);
        await c.execOk(["systemctl", "stop", "sipdir"], { timeoutMs: 30_000 });
        await overrideExecStart(c, undefined);
        console.log(
          `  systemd ${version.split("\n")[0].split(" ")[1]}, ` +
            `${
              /\+BPF_FRAMEWORK/.test(version) ? "+" : "-"
            }BPF_FRAMEWORK, /sys/fs/cgroup is ${fsType}: ` +
            `bind to 127.0.0.1:1235 (not allowed): ${bound[1]}; ` +
            `inspector without the guard: ${isInspector(probe) ? "opened" : "did not open"}`,
        );
        assertEquals(bound[1] === "listening on", !enforced);
        assertEquals(isInspector(probe), !enforced);
      },
    );

    await step(
      "with 127.0.0.1:9229 taken, sipdir warns naming it, then takes it once it is free",
      async () => {
        // Another program holds the inspector's address before sipdir starts.
        const holder = c.follow([
          Deno.execPath(),
          "eval",
          `const listener = Deno.listen({ hostname: "127.0.0.1", port: 9229 });
         console.log("holding");
         for await (const conn of listener) conn.close();`,
        ], { network: true });
        let released = 0;
        try {
          await holder.output.waitFor(/holding/);
          const from = log.mark();
          await startServing(c, log);
          await log.waitFor(/WARNING \S+ \S+ sipdir\[\d+\]: cannot hold 127\.0\.0\.1:9229 \(.*\)/, {
            from,
          });
          const usr1 = log.mark();
          await c.execOk(["systemctl", "kill", "--signal=USR1", "sipdir"]);
          await log.waitFor(/Failed to start inspector server/, { from: usr1 });
          assertOk(!isInspector(await probeInspector(c)));
        } finally {
          released = log.mark();
          await holder.stop();
        }
        // Once the other program lets go, sipdir takes the address (it retries every 10 s).
        await log.waitFor(/sipdir\[\d+\]: now holding 127\.0\.0\.1:9229/, {
          from: released,
          timeoutMs: 20_000,
        });
        const after = log.mark();
        await c.execOk(["systemctl", "kill", "--signal=USR1", "sipdir"]);
        await log.waitFor(/Failed to start inspector server/, { from: after });
        assertOk(!isInspector(await probeInspector(c)));
        await c.execOk(["systemctl", "stop", "sipdir"], { timeoutMs: 30_000 });
      },
    );

    await step("systemctl stop drains open connections and exits 0", async () => {
      mainPid = await startServing(c, log);
      // A client with a connection open: answered, then closed by the drain.
      const client = c.follow([
        Deno.execPath(),
        "eval",
        `import { LineClient } from ${JSON.stringify(LINE_CLIENT)};
         const client = await LineClient.connect(${PORT});
         await client.send(${JSON.stringify(fresh.aors[6] + "\n")});
         console.log("answer " + await client.line());
         await client.closed();
         console.log("closed by the server");`,
      ], { network: true });
      try {
        await client.output.waitFor(/answer .*\n/);
        const from = log.mark();
        await c.execOk(["systemctl", "stop", "sipdir"], { timeoutMs: 30_000 });
        await client.output.waitFor(/closed by the server/);
        assertOk(client.output.text.includes(`answer ${fresh.answer(fresh.aors[6])}\n`));
        await log.waitFor(/stopping: answering what was received, then closing 1 connection\(s\)/, {
          from,
        });
        await log.waitFor(/sipdir\[\d+\]: stopped\n/, { from });
      } finally {
        await client.stop();
      }
      const props = await show(c, "ActiveState", "Result", "ExecMainCode", "ExecMainStatus");
      assertEquals(props, {
        ActiveState: "inactive",
        Result: "success",
        ExecMainCode: "1", // CLD_EXITED
        ExecMainStatus: "0",
      });
    });

    await step("never killed by the system call filter (no status=31/SYS), no 203/EXEC", () => {
      assertOk(!/status=31\/SYS/.test(log.text), "killed by SIGSYS: see the journal");
      assertOk(!/203\/EXEC/.test(log.text), "an Exec line could not run");
      // The stand-in fetched nothing (see sipdirStandIn).
      assertOk(!/Download http/.test(log.text), "deno tried to download modules");
    });
    if (failures > 0) console.error(`journal of sipdir.service:\n${journal.output.text}`);
  } catch (error) {
    if (journal) console.error(`journal of sipdir.service:\n${journal.output.text}`);
    throw error;
  } finally {
    await journal?.stop();
    await container?.stop();
    await Deno.remove(denoDir, { recursive: true });
    console.log(`systemd test: ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
  }
});
