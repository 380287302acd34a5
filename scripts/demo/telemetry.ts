/**
 * The telemetry part of the demo: plan a realistic burst (a handful of projects and event types,
 * ~20 % repeated ids, within and across requests), send it from concurrent clients, wait until
 * every unique id is a row in D1, verify exactly those ids are there, and report the pipeline's
 * cost per 1,000 events from /v1/admin/metrics.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { type Phase, fmt } from "../lib/report.ts";
import type { TelemetryMetrics } from "../lib/stack.ts";
import { type SendStats, type TrafficPlan, percentile, planTraffic, sendRequests } from "../lib/telemetry.ts";
import { type DemoContext, SECTION, need } from "./context.ts";

export interface TelemetryOptions {
  events: number;
  repeatRate: number;
  clients: number;
  seed: number;
  /** How long to wait for every unique id to reach D1. */
  timeoutMs: number;
}

export interface TelemetryState {
  plan?: TrafficPlan;
  sent?: SendStats;
  stored?: number;
  metrics?: TelemetryMetrics;
}

const IdRowSchema = z.object({ id: z.string() });
const TELEMETRY = "Telemetry";
const PIPELINE = "Pipeline cost (from /v1/admin/metrics)";
const TIMES = SECTION.times;

/** "a 3, b 2, c 1": counts, largest first. */
function share(counts: Map<string, number>): string {
  return [...counts]
    .toSorted((a, b) => b[1] - a[1])
    .map(([name, n]) => `${name} ${fmt.int(n)}`)
    .join(", ");
}

function state(ctx: DemoContext): TelemetryState {
  ctx.telemetry ??= {};
  return ctx.telemetry;
}

export function telemetryPhases(options: TelemetryOptions): Phase<DemoContext>[] {
  return [
    {
      name: "plan",
      title: `Plan ${fmt.int(options.events)} events (${fmt.pct(options.repeatRate)} repeated ids)`,
      run: async (ctx) => {
        const plan = planTraffic({
          seed: options.seed,
          prefix: `demo-${options.seed}`,
          total: options.events,
          repeatRate: options.repeatRate,
          withinShare: 0.25,
          minBatch: 100,
          maxBatch: 1000,
        });
        state(ctx).plan = plan;
        console.log(
          `  ${fmt.int(plan.sent)} events in ${plan.requests.length} requests of 100–1000, ${fmt.int(plan.uniqueIds.size)} unique ids`,
        );
        ctx.report.set(TELEMETRY, "requests (100–1000 events each)", plan.requests.length);
        ctx.report.set(TELEMETRY, "concurrent clients", options.clients);
        ctx.report.set(TELEMETRY, "events sent", plan.sent);
        ctx.report.set(TELEMETRY, "unique ids", plan.uniqueIds.size);
        ctx.report.set(TELEMETRY, "repeats within a request", plan.repeatedWithinRequest);
        ctx.report.set(TELEMETRY, "repeats across requests", plan.repeatedAcrossRequests);
        ctx.report.set(TELEMETRY, "unique events by project", share(plan.byProject));
        ctx.report.set(TELEMETRY, "unique events by type", share(plan.byType));
        await Promise.resolve();
      },
    },
    {
      name: "send",
      title: `Send from ${options.clients} concurrent clients`,
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const plan = need(state(ctx).plan, "plan");
        stack.mark("demo: send starts");
        const started = Date.now();
        const sent = await sendRequests(stack, plan.requests, {
          clients: options.clients,
          onProgress: (stats) => {
            const seconds = (Date.now() - started) / 1000;
            ctx.progress.update(
              `sending ${fmt.int(stats.events)}/${fmt.int(plan.sent)} events · ${stats.requests}/${plan.requests.length} requests · ${fmt.int(stats.events / Math.max(seconds, 0.001))} events/s · retries ${stats.retries}`,
            );
          },
        });
        stack.mark("demo: send done");
        state(ctx).sent = sent;
        ctx.at.telemetryFirstSend = sent.firstSendAt;
        ctx.at.telemetryLastAnswer = sent.lastAnswerAt;
        const ms = sent.lastAnswerAt - sent.firstSendAt;
        ctx.progress.done(
          `sent ${fmt.int(sent.events)} events in ${fmt.s(ms)} (${fmt.int(sent.events / (ms / 1000))} events/s), p50 ${fmt.int(percentile(sent.latenciesMs, 50))} ms, p99 ${fmt.int(percentile(sent.latenciesMs, 99))} ms per request`,
        );
        const statuses = [...sent.statuses].map(([status, n]) => `${status}×${n}`).join(", ");
        ctx.report.set(TELEMETRY, "accepted (sum of 202 `accepted`)", sent.accepted);
        ctx.report.set(TELEMETRY, "HTTP answers", statuses);
        ctx.report.set(TELEMETRY, "retried requests (429/503/network)", sent.retries);
        ctx.report.set(TIMES, "send (first request → last 202)", fmt.s(ms));
        ctx.report.set(TIMES, "ingress rate", `${fmt.int(sent.events / (ms / 1000))} events/s`);
        ctx.report.set(
          TIMES,
          "request latency p50 / p99",
          `${fmt.int(percentile(sent.latenciesMs, 50))} / ${fmt.int(percentile(sent.latenciesMs, 99))} ms`,
        );
        ctx.report.check(
          "every event accepted",
          sent.accepted === plan.sent,
          `${fmt.int(sent.accepted)} of ${fmt.int(plan.sent)} accepted`,
        );
        ctx.report.check("no 5xx answers", sent.serverErrors === 0, `${sent.serverErrors} answers ≥ 500`);
        if (sent.failures.length > 0) {
          throw new Error(
            `${sent.failures.length} request(s) failed for good: ${sent.failures.slice(0, 3).join("; ")}`,
          );
        }
      },
    },
    {
      name: "drain",
      title: "Wait until every unique id is stored in D1",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const unique = need(state(ctx).plan, "plan").uniqueIds.size;
        const from = ctx.at.telemetryLastAnswer ?? Date.now();
        const deadline = Date.now() + options.timeoutMs;
        let stored = 0;
        let metrics: TelemetryMetrics | undefined;
        let lastMetricsAt = 0;
        for (;;) {
          stored = await stack.countD1();
          if (Date.now() - lastMetricsAt >= 2_000 || stored >= unique) {
            metrics = await stack.metrics();
            lastMetricsAt = Date.now();
          }
          if (stored >= unique && metrics?.buffered === 0) break;
          if (stack.reloads.length > 0) {
            throw stack.failure(
              "wrangler reloaded the worker during the run (a source file changed); local queue messages in flight were lost. Re-run without editing sources",
            );
          }
          if (Date.now() > deadline) {
            throw stack.failure(
              `timed out after ${fmt.s(options.timeoutMs)}: ${fmt.int(stored)} of ${fmt.int(unique)} unique ids in D1, ${fmt.int(metrics?.buffered ?? -1)} rows buffered in shards, ${metrics?.flush_failures ?? "?"} flush failures`,
            );
          }
          ctx.progress.update(
            `stored ${fmt.int(stored)}/${fmt.int(unique)} unique ids in D1 · ${fmt.int(metrics?.buffered ?? 0)} buffered in shards · ${metrics?.shard_rpcs ?? 0} shard RPCs · ${fmt.s(Date.now() - from)}`,
          );
          await sleep(500);
        }
        ctx.at.telemetryAllStored = Date.now();
        stack.mark("demo: all unique ids stored");
        state(ctx).stored = stored;
        ctx.progress.done(
          `all ${fmt.int(unique)} unique ids stored ${fmt.s(ctx.at.telemetryAllStored - from)} after the last 202`,
        );
      },
    },
    {
      name: "verify",
      title: "Verify D1 against what was sent",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const plan = need(state(ctx).plan, "plan");
        const sent = need(state(ctx).sent, "send results");
        // The supported path (a second workerd reads the same state), as a cross-check of the fast one.
        const official = await stack.countD1("SELECT COUNT(*) AS n FROM runtime_events", "wrangler");
        const rows = await stack.queryD1("SELECT id FROM runtime_events");
        const stored = new Set(rows.map((row) => IdRowSchema.parse(row).id));
        const missing = [...plan.uniqueIds].filter((id) => !stored.has(id));
        const unexpected = [...stored].filter((id) => !plan.uniqueIds.has(id));
        ctx.report.set(TELEMETRY, "stored in D1", official);
        ctx.report.set(TELEMETRY, "deduped (sent − stored)", plan.sent - official);
        ctx.report.check(
          "stored == unique",
          official === plan.uniqueIds.size,
          `${fmt.int(official)} rows in runtime_events (wrangler d1 execute), ${fmt.int(plan.uniqueIds.size)} unique ids sent`,
        );
        ctx.report.check(
          "exactly the ids sent",
          missing.length === 0 && unexpected.length === 0,
          `${missing.length} missing${missing.length ? ` (e.g. ${missing.slice(0, 3).join(", ")})` : ""}, ${unexpected.length} unexpected`,
        );
        ctx.report.check(
          "deduped == repeats sent",
          sent.accepted - official === plan.repeatedWithinRequest + plan.repeatedAcrossRequests,
          `${fmt.int(sent.accepted - official)} dropped as duplicates, ${fmt.int(plan.repeatedWithinRequest + plan.repeatedAcrossRequests)} repeats sent`,
        );
        console.log(`  D1 holds ${fmt.int(official)} rows: ${missing.length} missing, ${unexpected.length} unexpected`);
      },
    },
    {
      name: "metrics",
      title: "Read pipeline metrics",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const plan = need(state(ctx).plan, "plan");
        const metrics = await stack.metrics();
        state(ctx).metrics = metrics;
        const per1k = (n: number) => fmt.dec((n / plan.sent) * 1000, 2);
        ctx.report.set(PIPELINE, "D1 round trips per 1,000 events sent", per1k(metrics.d1.round_trips));
        ctx.report.set(PIPELINE, "D1 statements per 1,000 events sent", per1k(metrics.d1.statements));
        ctx.report.set(PIPELINE, "shard RPCs per 1,000 events sent", per1k(metrics.shard_rpcs));
        ctx.report.set(
          PIPELINE,
          "D1 round trips / statements / rows written",
          `${fmt.int(metrics.d1.round_trips)} / ${fmt.int(metrics.d1.statements)} / ${fmt.int(metrics.d1.rows_written)}`,
        );
        ctx.report.set(PIPELINE, "shard RPCs", metrics.shard_rpcs);
        ctx.report.set(PIPELINE, "shards", metrics.shard_count);
        ctx.report.check("shard buffers empty", metrics.buffered === 0, `${metrics.buffered} rows still buffered`);
        ctx.report.check(
          "no flush failures",
          metrics.flush_failures === 0,
          `${metrics.flush_failures} consecutive flush failures`,
        );
        const first = ctx.at.telemetryFirstSend ?? 0;
        if (ctx.at.telemetryLastAnswer && ctx.at.telemetryAllStored) {
          ctx.report.set(
            TIMES,
            "drain (last 202 → all stored)",
            fmt.s(ctx.at.telemetryAllStored - ctx.at.telemetryLastAnswer),
          );
          ctx.report.set(TIMES, "end to end (first request → all stored)", fmt.s(ctx.at.telemetryAllStored - first));
          ctx.report.set(
            TIMES,
            "end-to-end rate",
            `${fmt.int(plan.sent / ((ctx.at.telemetryAllStored - first) / 1000))} events/s`,
          );
        }
        console.log(
          `  ${per1k(metrics.d1.round_trips)} D1 round trips, ${per1k(metrics.d1.statements)} statements, ${per1k(metrics.shard_rpcs)} shard RPCs per 1,000 events`,
        );
      },
    },
  ];
}
