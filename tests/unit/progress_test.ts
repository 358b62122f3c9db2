import assert from "node:assert/strict";
import { ProgressBar } from "../../lib/progress.ts";

Deno.test("progress off a terminal: at most one line every few seconds, always the final one", () => {
  const lines: string[] = [];
  const bar = new ProgressBar("Backing up", 0, (t) => lines.push(t), false);
  for (let n = 1000; n <= 100_000; n += 1000) bar.update(n);
  bar.done(100_000);
  assert.equal(lines.length, 2, lines.join(""));
  assert.match(lines[0], /^Backing up: 1000 entries · \d+ entries\/s\n$/);
  assert.match(lines[1], /^Backing up: 100000 entries in [\d.]+ s \(\d+ entries\/s\)\n$/);
});
