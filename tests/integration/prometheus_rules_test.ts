/**
 * The example alert rules (`deploy/prometheus/sipdir.rules.yml`) with
 * Prometheus's own tool (Debian package `prometheus`): `promtool check rules`
 * accepts them, and `promtool test rules` runs their unit tests
 * (`sipdir.rules.test.yml`), which show every alert firing for the series
 * that should raise it and silent for those that should not. The rules use
 * only metrics that sipdir exports.
 */

import { parse } from "yaml";
import { assertEquals, assertOk } from "../assert.ts";

const dir = new URL("../../deploy/prometheus/", import.meta.url).pathname;
const RULES = `${dir}sipdir.rules.yml`;
const TESTS = `${dir}sipdir.rules.test.yml`;

async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  const { code, stdout, stderr } = await new Deno.Command("promtool", {
    args,
    cwd: dir,
  }).output();
  const decoder = new TextDecoder();
  return { code, output: (decoder.decode(stdout) + decoder.decode(stderr)).trim() };
}

// deno-lint-ignore no-explicit-any
type Yaml = any;

async function alerts(): Promise<{ alert: string; expr: string }[]> {
  const rules = parse(await Deno.readTextFile(RULES));
  return rules.groups.flatMap((g: Yaml) => g.rules);
}

Deno.test("prometheus rules: promtool check rules accepts them", async () => {
  const { code, output } = await promtool("check", "rules", RULES);
  console.log(output.split("\n").map((line) => `  ${line}`).join("\n"));
  assertEquals(code, 0, output);
  assertOk(output.includes(`SUCCESS: ${(await alerts()).length} rules found`), output);
});

Deno.test("prometheus rules: the unit tests pass and show each alert firing and silent", async () => {
  const { code, output } = await promtool("test", "rules", TESTS);
  console.log(output.split("\n").map((line) => `  ${line}`).join("\n"));
  assertEquals(code, 0, output);
  assertOk(output.includes("SUCCESS"), output);

  const tests = parse(await Deno.readTextFile(TESTS));
  const cases = tests.tests.flatMap((t: Yaml) => t.alert_rule_test) as {
    alertname: string;
    exp_alerts: unknown[];
  }[];
  const firing = new Set(cases.filter((c) => c.exp_alerts.length > 0).map((c) => c.alertname));
  const silent = new Set(cases.filter((c) => c.exp_alerts.length === 0).map((c) => c.alertname));
  const names = (await alerts()).map((a) => a.alert);
  const firingAndSilent = names.filter((name) => firing.has(name) && silent.has(name));
  console.log(
    `  ${firing.size} of ${names.length} alerts shown firing; ${firingAndSilent.length} also shown silent: ${
      firingAndSilent.join(", ")
    }`,
  );
  assertEquals(names.filter((name) => !firing.has(name)), [], "alerts never shown firing");
  assertOk(firingAndSilent.length >= 3);
});

Deno.test("prometheus rules: every metric they use is one sipdir exports", async () => {
  const source = await Deno.readTextFile(
    new URL("../../lib/operations/metrics.ts", import.meta.url),
  );
  const exported = new Set(
    [...source.matchAll(/"((?:sipdir|process)_[a-z_]+)"/g)].map((m) => m[1]),
  );
  for (const { alert, expr } of await alerts()) {
    for (const [name] of expr.matchAll(/\b(?:sipdir|process)_[a-z_]+\b/g)) {
      assertOk(exported.has(name), `${alert} uses ${name}, which sipdir does not export`);
    }
  }
});
