import { assertEquals } from "./assert.ts";
import { progressLine } from "../lib/loading/progress.ts";

function setup() {
  const decoder = new TextDecoder();
  let now = 0;
  const writer = {
    text: "",
    writeSync: (p: Uint8Array) => (writer.text += decoder.decode(p), p.length),
  };
  const progress = progressLine({
    label: "data/regs",
    writer,
    now: () => now,
    delay: 300,
    interval: 200,
  });
  return { progress, writer, advance: (ms: number) => now += ms };
}

Deno.test("progress: quick loads print nothing", () => {
  const { progress, writer, advance } = setup();
  advance(100);
  progress.update(10e6, 20e6);
  progress.clear();
  assertEquals(writer.text, "");
});

Deno.test("progress: slow loads show percent and megabytes, throttled, then erase", () => {
  const { progress, writer, advance } = setup();
  advance(300);
  progress.update(165e6, 660e6);
  advance(50);
  progress.update(200e6, 660e6); // too soon: skipped
  advance(200);
  progress.update(660e6, 660e6);
  progress.clear();
  assertEquals(writer.text.split("\r\x1b[K"), [
    "",
    "loading data/regs: 25% (165 of 660 MB)",
    "loading data/regs: 100% (660 of 660 MB)",
    "",
  ]);
});
