/**
 * The runaway-tenant fault test (issue 13, docs/tenant-isolation.md): on the real local stack
 * (scripts/lib/stack.ts: the control plane and the tenant runtime as two workerd processes), deploy
 * a tenant whose route loops forever and one whose route allocates until its heap is exhausted, and
 * while they run drive ingest (POST /v1/events, POST /v1/counters) at a steady rate and probe
 * GET /v1/health. Every ingest request must be answered 2xx, everything acknowledged must be in D1
 * once drained (0 lost, 0 counted twice), the runaway tenants' requests end in a clear 5xx, and
 * another tenant serves again once the watchdog has restarted the runtime.
 *
 *   node --test scripts/tenant-faults.node.test.ts      (part of npm run test:node; ~60 s)
 *
 * It prints the numbers of the closing note (answered, p99, lost) and the runtime's measurements
 * (2 GiB allocation, idle RSS of process B, the hop's cost per tenant request).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { DEFAULT_WEBHOOK_SECRET, signWebhook } from "../cli/manifest.ts";
import { INGEST_KEY, type Stack, startStack } from "./lib/stack.ts";

const LOOPING = "faults-loop";
const HEAP = "faults-heap";
const GOOD = "faults-good";
const INGEST_PROJECT = "faults-ingest";
/** One ingest request every 100 ms (events and counters alternating), 10 items each. */
const INGEST_EVERY_MS = 100;
const PER_REQUEST = 10;

const TENANTS: Record<string, string> = {
  [LOOPING]: `export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/spin") { for (;;) {} }
    return new Response("loop tenant idle");
  },
};`,
  [HEAP]: `export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/blow") {
      const hoard = [];
      for (;;) hoard.push(new Array(1_000_000).fill(hoard.length));
    }
    if (path === "/big") {
      try {
        const buffer = new ArrayBuffer(2 * 1024 ** 3);
        return Response.json({ allocated: buffer.byteLength });
      } catch (error) {
        return Response.json({ refused: String(error) });
      }
    }
    return new Response("heap tenant idle");
  },
};`,
  [GOOD]: `export default { async fetch() { return new Response("good tenant"); } };`,
};

const AcceptedSchema = z.object({ deploy_id: z.string() });
const DeployStatusSchema = z.looseObject({ status: z.string(), error: z.unknown().optional() });
const CountSchema = z.array(z.object({ n: z.coerce.number() }));

async function deploy(stack: Stack, project: string): Promise<void> {
  const body = JSON.stringify({
    project_id: project,
    compatibility_date: "2026-11-01",
    main_module: "index.js",
    modules: [{ name: "index.js", type: "esm", content: TENANTS[project] }],
    config: { durable_objects: { bindings: [] } },
  });
  const id = `msg_faults_${randomUUID()}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const response = await fetch(`${stack.url}/v1/deploys`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signWebhook(DEFAULT_WEBHOOK_SECRET, id, timestamp, body),
    },
    body,
  });
  assert.equal(response.status, 202, `deploy ${project}: ${await response.clone().text()}`);
  const { deploy_id } = AcceptedSchema.parse(await response.json());
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(300)) {
    const status = DeployStatusSchema.parse(
      (await stack.request("GET", `/v1/deploys/${deploy_id}`, { token: "dev-admin-token" })).body,
    );
    if (status.status === "complete") return;
    assert.notEqual(status.status, "errored", `deploy ${project} errored: ${JSON.stringify(status.error)}`);
  }
  assert.fail(`deploy ${project} did not complete within 60 s`);
}

/** A tenant request; network failures are answers too (status 0) so the test reports them. */
async function tenant(stack: Stack, project: string, path = "/", timeoutMs = 30_000) {
  const started = performance.now();
  try {
    const response = await fetch(`${stack.url}/t/${project}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    return { status: response.status, text, headers: response.headers, ms: performance.now() - started };
  } catch (error) {
    return { status: 0, text: String(error), headers: new Headers(), ms: performance.now() - started };
  }
}

/** Polls `project` until it answers 200 (another tenant serving again after a restart). */
async function servesAgain(stack: Stack, project: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const answer = await tenant(stack, project, "/", 5_000);
    if (answer.status === 200) return Date.now() - started;
    await sleep(250);
  }
  return Number.NaN;
}

function percentile(values: number[], p: number): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

interface Ingest {
  kind: "events" | "counters";
  ids: string[];
  status: number;
  ms: number;
  /** When it was sent (epoch ms), to tell the requests made while a tenant ran away. */
  at: number;
}

/** Steady ingest until `stop` is set: each request's ids, status and latency. */
function driveIngest(stack: Stack, control: { stop: boolean }): { done: Promise<void>; log: Ingest[] } {
  const log: Ingest[] = [];
  const inflight: Promise<void>[] = [];
  let n = 0;
  const send = async (i: number) => {
    const kind = i % 2 === 0 ? "events" : "counters";
    const ids = Array.from({ length: PER_REQUEST }, (_, k) => `faults-${kind}-${i}-${k}`);
    const body =
      kind === "events"
        ? {
            events: ids.map((id) => ({
              id,
              project_id: INGEST_PROJECT,
              type: "fault_probe",
              ts: Date.now(),
              data: { i },
            })),
          }
        : { increments: ids.map((id) => ({ id, scope: "post", key: "faults", field: "hits", delta: 1 })) };
    const at = Date.now();
    let answer: { status: number; ms: number };
    try {
      answer = await stack.request("POST", `/v1/${kind}`, { token: INGEST_KEY, body, timeoutMs: 30_000 });
    } catch {
      answer = { status: 0, ms: 30_000 };
    }
    log.push({ kind, ids, status: answer.status, ms: answer.ms, at });
  };
  const done = (async () => {
    const start = performance.now();
    while (!control.stop) {
      inflight.push(send(n++));
      // Paced from the start time, so a slow answer never slows the rate down.
      const next = start + n * INGEST_EVERY_MS;
      await sleep(Math.max(0, next - performance.now()));
    }
    await Promise.all(inflight);
  })();
  return { done, log };
}

void describe("a runaway tenant cannot hurt the control plane or other tenants", { timeout: 240_000 }, () => {
  let stack: Stack;

  before(async () => {
    stack = await startStack({
      name: "tenant-faults",
      say: () => undefined,
      vars: {
        RATE_LIMITS: JSON.stringify({
          ingest: { limit: 1_000_000, window_s: 60 },
          webhook: { limit: 1_000_000, window_s: 60 },
          admin: { limit: 1_000_000, window_s: 60 },
          auth_failures: { limit: 1_000_000, window_s: 60 },
        }),
        FLUSH_DELAY_MS: "200",
      },
    });
    for (const project of [LOOPING, HEAP, GOOD]) await deploy(stack, project);
  });

  after(async () => {
    await stack?.stop();
  });

  void it("T1.4 ingest answers 2xx throughout, runaway tenants get a 5xx, others serve again, nothing acknowledged is lost", async () => {
    const runtime = stack.tenants;
    assert.ok(runtime, "the stack runs a tenant runtime");

    // Idle measurements first: process B's memory and the hop per tenant request.
    assert.equal((await tenant(stack, GOOD)).status, 200);
    const idleRss = runtime.workerdRss();
    const hops: number[] = [];
    const dispatch: number[] = [];
    for (let i = 0; i < 40; i++) {
      const answer = await tenant(stack, GOOD);
      const timing = answer.headers.get("server-timing") ?? "";
      const inRuntime = Number(/shipyard-tenant-runtime;dur=([\d.]+)/.exec(timing)?.[1]);
      const whole = Number(/shipyard-dispatch;dur=([\d.]+)/.exec(timing)?.[1]);
      if (Number.isFinite(inRuntime) && Number.isFinite(whole)) {
        hops.push(whole - inRuntime);
        dispatch.push(whole);
      }
    }
    assert.ok(hops.length > 0, "tenant answers carry Server-Timing of the dispatch");

    const control = { stop: false };
    const ingest = driveIngest(stack, control);
    const health: { status: number; ms: number }[] = [];
    const probing = (async () => {
      while (!control.stop) {
        try {
          const answer = await stack.request("GET", "/v1/health", { timeoutMs: 10_000 });
          health.push({ status: answer.status, ms: answer.ms });
        } catch {
          health.push({ status: 0, ms: 10_000 });
        }
        await sleep(250);
      }
    })();

    await sleep(3_000);
    const faultsFrom = Date.now();
    const restartsBefore = runtime.restarts;
    const loop = await tenant(stack, LOOPING, "/spin");
    const goodAfterLoopMs = await servesAgain(stack, GOOD, 60_000);
    const restartsAfterLoop = runtime.restarts;

    const big = await tenant(stack, HEAP, "/big");
    const goodAfterBigMs = big.status === 200 ? 0 : await servesAgain(stack, GOOD, 60_000);
    const blow = await tenant(stack, HEAP, "/blow");
    const goodAfterBlowMs = await servesAgain(stack, GOOD, 60_000);
    const faultsUntil = Date.now();
    control.stop = true;
    await Promise.all([ingest.done, probing]);

    // Drain: every acknowledged event and increment must reach D1, exactly once.
    const acknowledged = ingest.log.filter((request) => request.status >= 200 && request.status < 300);
    const events = acknowledged.filter((request) => request.kind === "events").flatMap((request) => request.ids);
    const increments = acknowledged.filter((request) => request.kind === "counters").flatMap((request) => request.ids);
    let storedEvents = 0;
    let storedIncrements = 0;
    let counterValue = 0;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline; await sleep(500)) {
      storedEvents =
        CountSchema.parse(
          await stack.queryD1(`SELECT COUNT(*) AS n FROM runtime_events WHERE project_id = '${INGEST_PROJECT}'`),
        )[0]?.n ?? 0;
      storedIncrements =
        CountSchema.parse(
          await stack.queryD1("SELECT COUNT(*) AS n FROM counter_increments WHERE id LIKE 'faults-counters-%'"),
        )[0]?.n ?? 0;
      counterValue =
        CountSchema.parse(
          await stack.queryD1(
            "SELECT COALESCE(SUM(value), 0) AS n FROM counters WHERE scope = 'post' AND key = 'faults'",
          ),
        )[0]?.n ?? 0;
      if (storedEvents >= events.length && counterValue >= increments.length) break;
    }
    const latencies = ingest.log.map((request) => request.ms);
    const before = ingest.log.filter((request) => request.at < faultsFrom).map((request) => request.ms);
    const during = ingest.log
      .filter((request) => request.at >= faultsFrom && request.at <= faultsUntil)
      .map((request) => request.ms);
    const numbers = {
      ingest_requests: ingest.log.length,
      ingest_answered_2xx: acknowledged.length,
      ingest_p50_ms: Math.round(percentile(latencies, 50)),
      ingest_p99_ms: Math.round(percentile(latencies, 99)),
      ingest_max_ms: Math.round(Math.max(...latencies)),
      ingest_p99_before_faults_ms: Math.round(percentile(before, 99)),
      ingest_p99_during_faults_ms: Math.round(percentile(during, 99)),
      faults_window_s: Math.round((faultsUntil - faultsFrom) / 1000),
      health_probes: health.length,
      health_ok: health.filter((probe) => probe.status === 200).length,
      health_p99_ms: Math.round(
        percentile(
          health.map((probe) => probe.ms),
          99,
        ),
      ),
      events_acknowledged: events.length,
      events_stored: storedEvents,
      increments_acknowledged: increments.length,
      increments_stored: storedIncrements,
      counter_value: counterValue,
      lost:
        events.length -
        Math.min(storedEvents, events.length) +
        (increments.length - Math.min(counterValue, increments.length)),
      duplicated: Math.max(0, storedEvents - events.length) + Math.max(0, counterValue - increments.length),
      loop_answer: `${loop.status} ${loop.text.slice(0, 160)} after ${Math.round(loop.ms)} ms`,
      good_serves_again_after_loop_ms: goodAfterLoopMs,
      runtime_restarts_for_loop: restartsAfterLoop - restartsBefore,
      alloc_2gib: `${big.status} ${big.text.slice(0, 160)}`,
      good_serves_again_after_2gib_ms: goodAfterBigMs,
      heap_answer: `${blow.status} ${blow.text.slice(0, 160)} after ${Math.round(blow.ms)} ms`,
      good_serves_again_after_heap_ms: goodAfterBlowMs,
      runtime_restarts_total: runtime.restarts,
      runtime_events: runtime.events.map((event) => event.code).join(","),
      runtime_idle_rss_mib: Math.round(idleRss / 1024 ** 2),
      hop_p50_ms: Number(percentile(hops, 50).toFixed(2)),
      dispatch_p50_ms: Number(percentile(dispatch, 50).toFixed(2)),
    };
    console.log(`tenant fault numbers: ${JSON.stringify(numbers, null, 2)}`);

    assert.equal(numbers.ingest_answered_2xx, numbers.ingest_requests, "every ingest request answered 2xx");
    assert.equal(numbers.health_ok, numbers.health_probes, "every health probe answered 200");
    assert.equal(numbers.lost, 0, "nothing acknowledged lost");
    assert.equal(numbers.duplicated, 0, "nothing counted twice");
    assert.equal(storedIncrements, increments.length, "each increment id applied once");
    assert.ok([503, 504].includes(loop.status), `the looping tenant's request got 503/504: ${numbers.loop_answer}`);
    assert.match(loop.text, /"code":"tenant_(unavailable|timeout)"/);
    assert.ok(loop.headers.get("retry-after"), "with Retry-After");
    assert.ok(restartsAfterLoop > restartsBefore, "the watchdog restarted the runtime");
    assert.ok(Number.isFinite(goodAfterLoopMs), "another tenant serves again after the loop");
    assert.ok(blow.status >= 500, `the heap blow-up ended in a 5xx: ${numbers.heap_answer}`);
    assert.ok(Number.isFinite(goodAfterBlowMs), "another tenant serves again after the heap blow-up");
  });
});
