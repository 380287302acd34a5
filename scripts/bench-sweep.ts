/**
 * `npm run bench:sweep`: the telemetry primary arm of `npm run bench` at SHARD_COUNT 1, 8, 32 and
 * 64 (fresh stack each), and a table of end-to-end events/s and D1 round trips per 1,000 events.
 * Each point's full report goes to bench/out/sweep-<count>.md.
 *
 *   npm run bench:sweep -- [--counts 1,8,32,64] [--n 100000]
 */
import { spawn } from "node:child_process";
import path from "node:path";
import { parseArgs } from "node:util";
import { ROOT } from "./lib/wrangler.ts";

const { values: args } = parseArgs({
  options: { counts: { type: "string", default: "1,8,32,64" }, n: { type: "string", default: "100000" } },
});

function run(count: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, "scripts", "bench.ts"),
        "--arms",
        "primary",
        "--n-primary",
        args.n,
        "--var",
        `SHARD_COUNT:${count}`,
        "--out",
        path.join("bench", "out", `sweep-${count}.md`),
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on("error", reject);
    // bench.ts exits 1 when below its floor; the numbers are still what the sweep wants.
    child.on("exit", () => resolve(out));
  });
}

const rows: string[] = [];
for (const count of args.counts.split(",").map(Number)) {
  console.log(`▶ SHARD_COUNT=${count}`);
  const out = await run(count);
  const line = out.split("\n").find((text) => text.startsWith("| primary |"));
  const cells = line?.split("|").map((cell) => cell.trim()) ?? [];
  // Columns: arm, events, ingress, to 95 %, end to end, to 100 %, D1 round trips/1k, D1 statements/1k, shard RPCs/1k
  rows.push(
    `| ${count} | ${cells[5] ?? "?"} | ${cells[3] ?? "?"} | ${cells[7] ?? "?"} | ${cells[8] ?? "?"} | ${cells[9] ?? "?"} |`,
  );
}
console.log(
  "\n| SHARD_COUNT | end to end (events/s) | ingress (events/s) | D1 round trips / 1k | D1 statements / 1k | shard RPCs / 1k |",
);
console.log("|---:|---:|---:|---:|---:|---:|");
for (const row of rows) console.log(row);
