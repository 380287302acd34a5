/** Phases every demo run starts and ends with: a fresh local stack, and stopping it cleanly. */
import path from "node:path";
import { type Phase, fmt } from "../lib/report.ts";
import { startStack } from "../lib/stack.ts";
import { ROOT } from "../lib/wrangler.ts";
import { type DemoContext, SECTION } from "./context.ts";

const TIMES = SECTION.times;

/** Boots a fresh stack whose state and log are named `name` (`.wrangler/<name>-state`). */
export function bootPhaseFor(name: string): Phase<DemoContext> {
  return {
    name: "boot",
    title: "Boot a fresh local stack",
    run: async (ctx) => boot(ctx, name),
  };
}

async function boot(ctx: DemoContext, name: string): Promise<void> {
  const stack = await startStack({ name });
  ctx.stack = stack;
  ctx.report.set(SECTION.stack, "URL", stack.url);
  ctx.report.set(SECTION.stack, "state", path.relative(ROOT, stack.stateDir));
  ctx.report.set(SECTION.stack, "wrangler log", path.relative(ROOT, stack.logPath));
  ctx.report.set(SECTION.stack, "RUNTIME_EVENT_DO_MODE", stack.health?.modes.runtime_events ?? "?");
  ctx.report.set(SECTION.stack, "shards", stack.health?.shard_count ?? 0);
  ctx.report.set(
    SECTION.stack,
    "D1 read via",
    stack.d1Access === "sqlite" ? "local SQLite file (read-only)" : "wrangler d1 execute",
  );
  ctx.report.set(TIMES, "boot (spawn → health)", fmt.s(stack.readyAt - stack.spawnedAt));
}

export const bootPhase: Phase<DemoContext> = bootPhaseFor("demo");

export const teardownPhase: Phase<DemoContext> = {
  name: "teardown",
  title: "Stop the stack",
  always: true,
  run: async (ctx) => {
    if (!ctx.stack) return;
    ctx.report.check(
      "no reload during the run",
      ctx.stack.reloads.length === 0,
      ctx.stack.reloads.length === 0
        ? "wrangler never reloaded the worker"
        : `wrangler reloaded ${ctx.stack.reloads.length}× (a source file changed); queued messages may have been lost`,
    );
    await ctx.stack.stop();
    console.log("  stopped; no workerd left behind");
  },
};
