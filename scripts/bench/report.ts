/**
 * `bench/results.md`: the run's Markdown summary. Ratios first (the headline), then the floors of
 * issue 2, then one table per part (telemetry arms, shard sweep, counters, enforcement, small requests), CPU and
 * memory, and how to read it.
 */
import { fmt } from "../lib/report.ts";
import { type CpuSummary, type Versions, contended } from "./common.ts";
import type { CountersResult } from "./counters.ts";
import type { EnforcementResult } from "./enforcement.ts";
import { SMALL_FLOOR_RATIO, type SmallResult } from "./small.ts";
import type { TelemetryResult } from "./telemetry.ts";

export interface BenchResults {
  command: string;
  date: Date;
  wallMs: number;
  clients: number;
  localObservability: boolean;
  pollMs: number;
  versions: Versions;
  arms: TelemetryResult[];
  sweep: TelemetryResult[];
  counters: CountersResult[];
  enforcement: EnforcementResult | null;
  small: SmallResult | null;
  /** Parts that threw (the stack did not boot, wrangler reloaded …), with why. */
  failures: string[];
  /** File name of the chart, relative to the Markdown, when one was written. */
  chart: string | null;
}

/** Floors of issue 2, for arm C (primary) against arm A (off). */
export const FLOOR = { eventsPerSecond: 20_000, ratio: 20, d1RoundTripsPer1k: 20 };

export interface Floor {
  name: string;
  ok: boolean;
  detail: string;
}

function arm(results: BenchResults, mode: string): TelemetryResult | undefined {
  return results.arms.find((result) => result.mode === mode);
}

/** a ÷ b as "12.3×" (two significant digits below 1: "0.0009×"), or "—" when either is missing or zero. */
function ratio(a: number | undefined, b: number | undefined): string {
  if (!a || !b) return "—";
  const r = a / b;
  if (r >= 10) return `${fmt.dec(r)}×`;
  if (r >= 1) return `${fmt.dec(r, 2)}×`;
  return `${Number(r.toPrecision(2))}×`;
}

export function floors(results: BenchResults): Floor[] {
  const off = arm(results, "off");
  const primary = arm(results, "primary");
  const list: Floor[] = [];
  if (primary) {
    list.push(
      {
        name: `C (primary) ≥ ${fmt.int(FLOOR.eventsPerSecond)} events/s end to end`,
        ok: primary.eventsPerSecond >= FLOOR.eventsPerSecond,
        detail: `${fmt.int(primary.eventsPerSecond)} events/s`,
      },
      {
        name: `C (primary) ≤ ${FLOOR.d1RoundTripsPer1k} D1 round trips per 1,000 events`,
        ok: primary.d1RoundTripsPer1k <= FLOOR.d1RoundTripsPer1k,
        detail: fmt.dec(primary.d1RoundTripsPer1k, 2),
      },
    );
  }
  if (primary && off && off.eventsPerSecond > 0) {
    const times = primary.eventsPerSecond / off.eventsPerSecond;
    list.push({ name: `C ≥ ${FLOOR.ratio}× A (off)`, ok: times >= FLOOR.ratio, detail: `${fmt.dec(times)}×` });
  }
  const small = results.small;
  if (small) {
    list.push({
      name: `small requests (1 event, ${small.clients} clients) ≥ ${SMALL_FLOOR_RATIO}× GET /v1/health (issue 15)`,
      ok: small.ratio >= SMALL_FLOOR_RATIO && !small.error,
      detail: `${fmt.dec(small.ratio, 2)}× (${fmt.int(small.events.perSecond)} / ${fmt.int(small.health.perSecond)} requests/s), lost ${small.lost}, unexpected ${small.unexpected}`,
    });
  }
  return list;
}

/** The one-line headline: the ratios of events/s between the arms that ran. */
export function headline(results: BenchResults): string {
  const [a, b, c] = [arm(results, "off"), arm(results, "batch"), arm(results, "primary")];
  const parts: string[] = [];
  if (c && a) parts.push(`C/A ${ratio(c.eventsPerSecond, a.eventsPerSecond)}`);
  if (c && b) parts.push(`C/B ${ratio(c.eventsPerSecond, b.eventsPerSecond)}`);
  if (b && a) parts.push(`B/A ${ratio(b.eventsPerSecond, a.eventsPerSecond)}`);
  const rates = results.arms.map((r) => `${r.name} ${fmt.int(r.eventsPerSecond)}`).join(", ");
  const small = results.small
    ? `small requests: ${fmt.int(results.small.events.perSecond)} ingest vs ${fmt.int(results.small.health.perSecond)} health requests/s = ${fmt.dec(results.small.ratio, 2)}×`
    : null;
  const telemetry =
    parts.length > 0
      ? `events/s end to end: ${parts.join(" · ")} (${rates})`
      : rates
        ? `events/s end to end: ${rates}`
        : null;
  return [telemetry, small].filter(Boolean).join(" · ") || "no telemetry arm ran";
}

const ARM_LETTER: Record<string, string> = { off: "A", batch: "B", primary: "C" };

function armLabel(r: TelemetryResult): string {
  const letter = ARM_LETTER[r.name];
  return letter ? `${letter} ${r.name}` : r.name;
}

function ms(value: number | null): string {
  return value === null ? "—" : fmt.s(value);
}

function latency(r: TelemetryResult): string {
  return `${fmt.int(r.latency.p50)} / ${fmt.int(r.latency.p95)} / ${fmt.int(r.latency.p99)}`;
}

function telemetryTable(rows: readonly TelemetryResult[], first: string): string[] {
  return [
    `| ${first} | events | ingress (events/s) | to 95 % in D1 | **end to end (events/s)** | to 100 % | ingest → visible p50 / p95 / p99 (ms) | D1 round trips / 1k | D1 statements / 1k | Durable Object requests / 1k (RPCs + alarms) | peak RSS, workerd |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${first === "SHARD_COUNT" ? String(r.shardCount) : armLabel(r)} | ${fmt.int(r.events)} | ${fmt.int(r.ingressPerSecond)} | ${ms(r.ms95)} | **${fmt.int(r.eventsPerSecond)}** | ${ms(r.ms100)} | ${latency(r)} | ${fmt.dec(r.d1RoundTripsPer1k, 2)} | ${fmt.dec(r.d1StatementsPer1k, 2)} | ${fmt.dec(r.doRequestsPer1k, 2)} (${fmt.dec(r.shardRpcsPer1k, 2)} + ${fmt.dec(r.shardAlarmsPer1k, 2)}) | ${fmt.mib(r.memory.workerd)} |`,
    ),
  ];
}

function cpuCells(cpu: CpuSummary | null): string {
  if (!cpu) return "— | — | — | — | —";
  return `${fmt.dec(cpu.cores, 2)} cores | ${cpu.busiest} at ${fmt.dec(cpu.busiestCores * 100, 0)} % of a core | ${fmt.dec(cpu.clientCores, 2)} cores | ${fmt.dec(cpu.otherCores, 2)} cores | ${cpu.cpuPressure === null ? "—" : fmt.pct(cpu.cpuPressure)}`;
}

/**
 * Wall time of the queue consumer per event: the sum of the measured queue batches' durations ÷ N.
 * For B it is the consumer plus the whole D1 write (one db.batch per queue batch), and the batch
 * also waits for whatever else runs on the thread, so its inverse is a floor of the rows/s one D1
 * writer takes on this core; for C it is the consumer plus the shards' ingest (their flushes run
 * later, in alarms).
 */
function consumerUsPerEvent(r: TelemetryResult): string {
  if (r.queueBatches.length === 0) return "—";
  const ms = r.queueBatches.reduce((sum, batch) => sum + batch.ms, 0);
  return `${fmt.dec((ms * 1000) / r.events)} µs`;
}

function batchSummary(r: TelemetryResult): string {
  const batches = r.queueBatches;
  if (batches.length === 0) return "—";
  const messages = batches.reduce((sum, batch) => sum + batch.total, 0);
  const busy = batches.reduce((sum, batch) => sum + batch.ms, 0);
  const maxMs = Math.max(...batches.map((batch) => batch.ms));
  return `${batches.length} × ${fmt.dec(messages / batches.length)} msgs, ${fmt.int(busy / batches.length)} ms avg (max ${fmt.int(maxMs)})`;
}

function headlineSection(results: BenchResults): string[] {
  const [a, b, c] = [arm(results, "off"), arm(results, "batch"), arm(results, "primary")];
  const pairs: [string, TelemetryResult | undefined, TelemetryResult | undefined][] = [
    ["C / A (shards vs one insert per event)", c, a],
    ["C / B (shards vs one db.batch per queue batch)", c, b],
    ["B / A (batching alone)", b, a],
  ];
  const present = pairs.flatMap(([name, x, y]) => (x && y ? [{ name, x, y }] : []));
  if (present.length === 0) return [];
  return [
    "## Ratios",
    "",
    "| | events/s end to end | **ratio** | D1 round trips / 1k | ratio | D1 statements / 1k | ratio | Durable Object requests / 1k | ingest → visible p50 / p99 (ms) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...present.map(
      ({ name, x, y }) =>
        `| ${name} | ${fmt.int(x.eventsPerSecond)} / ${fmt.int(y.eventsPerSecond)} | **${ratio(x.eventsPerSecond, y.eventsPerSecond)}** | ${fmt.dec(x.d1RoundTripsPer1k, 2)} / ${fmt.dec(y.d1RoundTripsPer1k, 2)} | ${ratio(x.d1RoundTripsPer1k, y.d1RoundTripsPer1k)} | ${fmt.dec(x.d1StatementsPer1k, 2)} / ${fmt.dec(y.d1StatementsPer1k, 2)} | ${ratio(x.d1StatementsPer1k, y.d1StatementsPer1k)} | ${fmt.dec(x.doRequestsPer1k, 2)} / ${fmt.dec(y.doRequestsPer1k, 2)} | ${fmt.int(x.latency.p50)} / ${fmt.int(x.latency.p99)} vs ${fmt.int(y.latency.p50)} / ${fmt.int(y.latency.p99)} |`,
    ),
    "",
  ];
}

function countersSection(counters: readonly CountersResult[]): string[] {
  if (counters.length === 0) return [];
  const off = counters.find((r) => r.mode === "off");
  const primary = counters.find((r) => r.mode === "primary");
  return [
    "## Counters (`COUNTER_DO_MODE`)",
    "",
    "| arm | increments | counters | to all in D1 | **increments/s** | D1 round trips / 1k | D1 statements / 1k | Durable Object requests / 1k | peak RSS, workerd | other processes |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...counters.map(
      (r) =>
        `| ${r.mode} | ${fmt.int(r.increments)} | ${fmt.int(r.counters)} | ${fmt.s(r.ms)} | **${fmt.int(r.perSecond)}** | ${fmt.dec(r.d1RoundTripsPer1k, 2)} | ${fmt.dec(r.d1StatementsPer1k, 2)} | ${fmt.dec(r.doRequestsPer1k, 2)} | ${fmt.mib(r.memory.workerd)} | ${fmt.dec(r.cpu.otherCores, 2)} cores |`,
    ),
    "",
    ...(off && primary ? [`primary / off = **${ratio(primary.perSecond, off.perSecond)}** increments/s`, ""] : []),
    "The rate limiter's cost per rate-limited request (decided in the isolate; `checks` are the calls its `RateLimitShard`s answered, batched syncs of many requests each):",
    "",
    "| arm | rate-limited requests | limiter checks / request | SQLite rows read / request | rows written / request |",
    "|---|---:|---:|---:|---:|",
    ...counters.map(
      (r) =>
        `| ${r.mode} | ${fmt.int(r.limiter.requests)} | ${fmt.dec(r.limiter.checks, 2)} | ${fmt.dec(r.limiter.rowsRead, 2)} | ${fmt.dec(r.limiter.rowsWritten, 2)} |`,
    ),
    "",
    "Each metrics read (one before, one after an arm) is itself an admin request the limiter counts. A shard evicted while idle starts its figures from 0 again, so these are lower bounds.",
    "",
    "Time runs from the first request until D1's `counters` sum to N (no warm-up). `off` applies each increment in its own exactly-once D1 batch (4 statements, 1 round trip); `primary` merges a shard's increments into one flush.",
    "",
  ];
}

function enforcementSection(e: EnforcementResult | null): string[] {
  if (!e) return [];
  return [
    "## Enforcement",
    "",
    "| projects | over the threshold (seeded / found) | seeding | **cycle, trigger → complete** | CPU of the whole stack | peak RSS, workerd | other processes |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    `| ${fmt.int(e.projects)} | ${fmt.int(e.seededOver)} / ${e.foundOver === null ? "—" : fmt.int(e.foundOver)} | ${fmt.s(e.seedMs)} | **${fmt.s(e.ms)}** (${e.status}) | ${fmt.dec(e.cpuSeconds, 2)} s | ${fmt.mib(e.memory.workerd)} | ${fmt.dec(e.cpu.otherCores, 2)} cores |`,
    "",
    "One enforcement workflow over N seeded active projects with Durable Objects, each with a rolling-24 h usage row. The offenders have no deployed script locally, so their steps find nothing to remove: the cycle measures finding offenders among N projects plus the per-offender step overhead.",
    "",
  ];
}

function phaseRow(name: string, rate: SmallResult["health"]): string {
  const statuses = Object.entries(rate.statuses)
    .map(([status, n]) => `${status} × ${fmt.int(n)}`)
    .join(", ");
  return `| ${name} | ${fmt.int(rate.requests)} | **${fmt.int(rate.perSecond)}** | ${fmt.dec(rate.p50, 1)} / ${fmt.dec(rate.p99, 1)} | ${statuses} | ${cpuCells(rate.cpu)} |`;
}

/** Milliseconds of stack CPU per request of a phase. */
function cpuPerRequest(rate: SmallResult["health"]): string {
  return rate.cpu && rate.perSecond > 0 ? `${fmt.dec((rate.cpu.cores * 1000) / rate.perSecond, 2)} ms` : "—";
}

function smallSection(s: SmallResult | null): string[] {
  if (!s) return [];
  return [
    "## Small requests (issue 15)",
    "",
    `One stack, ${s.clients} concurrent clients, the same client loop for both kinds, ${s.rounds} alternating phases of ${fmt.s(s.phaseMs)} each (health, then ingest; the queue is drained before every health phase, so ingest runs alongside its own consumer and health on an idle pipeline). Ingest: \`POST /v1/events\` with one event per request.`,
    "",
    "| kind | requests | **requests/s** | client latency p50 / p99 (ms) | answers | stack CPU | busiest thread | this client | other processes | CPU pressure |",
    "|---|---:|---:|---:|---|---:|---|---:|---:|---:|",
    phaseRow("`GET /v1/health`", s.health),
    phaseRow("`POST /v1/events`, 1 event", s.events),
    "",
    `**Ratio: ${fmt.dec(s.ratio, 2)}×** (floor ${SMALL_FLOOR_RATIO}×). Per round (health / ingest requests/s): ${s.perRound.map((r) => `${fmt.int(r.health)} / ${fmt.int(r.events)}`).join(", ")}.`,
    "",
    `Every 202 checked against D1: ${fmt.int(s.accepted)} events accepted (warm-up included), ${fmt.int(s.stored)} stored, **lost ${s.lost}, unexpected ${s.unexpected}**. The rate limiter over ${fmt.int(s.limiter.decisions)} decisions: ${fmt.dec(s.limiter.syncsPerRequest, 4)} syncs (Durable Object calls) and ${fmt.dec(s.limiter.rowsWrittenPerRequest, 4)} SQLite rows written per request.`,
    "",
    `Stack CPU per request (all its processes and threads, as cores ÷ requests/s): health ${cpuPerRequest(s.health)}, ingest ${cpuPerRequest(s.events)}.${
      s.sends && s.sends.sends > 0
        ? ` Queue sends: ${fmt.int(s.sends.requests)} ingest requests went out in ${fmt.int(s.sends.sends)} sends of ${fmt.int(s.sends.messages)} messages, ${fmt.dec(s.sends.requests / s.sends.sends, 1)} requests per send (concurrent requests share one: lib/send-coalescer.ts).`
        : ""
    }`,
    "",
    ...(s.error ? [`**small did not pass:** ${s.error}`, ""] : []),
    ...profileTables("small requests", s.profile),
  ];
}

function profileSection(r: TelemetryResult): string[] {
  return profileTables(r.name, r.profile);
}

function profileTables(name: string, p: TelemetryResult["profile"]): string[] {
  if (!p) return [];
  return [
    `### Where the worker isolate's time goes: ${name}`,
    "",
    `CPU profile of the Worker isolate over the measured window: ${fmt.s(p.totalMs)} sampled, ${fmt.s(p.busyMs)} busy (${fmt.pct(p.busyMs / Math.max(1, p.totalMs))}), GC ${fmt.s(p.gcMs)}. D1 and the local queue run in other isolates on the same workerd thread and are not in this profile.`,
    "",
    "| function (inclusive) | ms | share of busy |",
    "|---|---:|---:|",
    ...Object.entries(p.inclusive)
      .filter(([, value]) => value > 0)
      .toSorted((x, y) => y[1] - x[1])
      .map(([name, value]) => `| ${name} | ${fmt.int(value)} | ${fmt.pct(value / p.busyMs)} |`),
    "",
    "| hottest (self time) | ms | share of busy |",
    "|---|---:|---:|",
    ...p.top.map((entry) => `| \`${entry.name}\` | ${fmt.int(entry.selfMs)} | ${fmt.pct(entry.share)} |`),
    "",
  ];
}

export function renderMarkdown(results: BenchResults): string {
  const v = results.versions;
  const telemetry = [...results.arms, ...results.sweep];
  const floorList = floors(results);
  const lines = [
    "# Shipyard benchmark",
    "",
    `**${headline(results)}**`,
    "",
    `- Command: \`${results.command}\` (${fmt.s(results.wallMs)} wall in all)`,
    `- Date: ${results.date.toISOString()}`,
    `- Machine: ${v.cores} cores (${v.cpu}), ${v.memory}, ${v.os}`,
    `- Node ${v.node}, wrangler ${v.wrangler}, workerd ${v.workerd}; commit ${v.commit}`,
    `- Local workerd via \`wrangler dev\`, a fresh stack (state directory, D1, Durable Objects) per arm; ${results.clients} concurrent clients; rate limits lifted with \`--var RATE_LIMITS\`; wrangler's local trace collection ${results.localObservability ? "left on (`--local-observability`)" : "off (`X_LOCAL_OBSERVABILITY=false`: it records every SQL statement on the same workerd thread and roughly halves local throughput)"}`,
    `- Ingest → visible: D1 polled every ${results.pollMs} ms (the latency is late by up to one poll; the measured mean interval is in the CPU table)`,
    "",
    ...headlineSection(results),
  ];
  if (floorList.length > 0) {
    lines.push("## Floors (issues 2 and 15)", "", "| floor | result | measured |", "|---|---|---:|");
    for (const floor of floorList)
      lines.push(`| ${floor.name} | ${floor.ok ? "pass" : "**FAIL**"} | ${floor.detail} |`);
    lines.push("");
  }
  if (results.chart) lines.push(`![events/s per arm and ingest-to-visible latency](${results.chart})`, "");
  if (results.arms.length > 0) {
    lines.push(
      "## Telemetry arms",
      "",
      "A `off`: the consumer inserts each event on its own (one D1 round trip per event). B `batch`: no Durable Objects, the consumer writes each queue batch with one `db.batch` of multi-row inserts. C `primary`: hash shards (32) dedupe, buffer and flush multi-row batches.",
      "",
      ...telemetryTable(results.arms, "arm"),
      "",
    );
  }
  if (results.sweep.length > 0) {
    lines.push("## Shard-count sweep (primary)", "", ...telemetryTable(results.sweep, "SHARD_COUNT"), "");
  }
  if (telemetry.length > 0) {
    lines.push(
      "### CPU, memory and queue batches (telemetry)",
      "",
      "| arm | stack CPU, first send → 95 % | busiest thread | this client | other processes | CPU pressure | peak RSS, whole stack | workerd high-water mark | D1 polls (mean / max interval) | queue batches | queue consumer time per event | D1 bytes per row | request p50 / p99 |",
      "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
      ...telemetry.map(
        (r) =>
          `| ${armLabel(r)} | ${cpuCells(r.cpu)} | ${fmt.mib(r.memory.stack)} | ${fmt.mib(r.memory.workerdHighWater)} | ${fmt.int(r.latency.pollMeanMs)} / ${fmt.int(r.latency.pollMaxMs)} ms | ${batchSummary(r)} | ${consumerUsPerEvent(r)} | ${fmt.int(r.d1BytesPerRow)} B | ${fmt.int(r.requestP50)} / ${fmt.int(r.requestP99)} ms |`,
      ),
      "",
    );
  }
  lines.push(
    ...countersSection(results.counters),
    ...enforcementSection(results.enforcement),
    ...smallSection(results.small),
  );

  const busy = [
    ...telemetry.filter((r) => contended(r.cpu)).map((r) => r.name),
    ...results.counters.filter((r) => contended(r.cpu)).map((r) => `counters ${r.mode}`),
    ...(results.enforcement && contended(results.enforcement.cpu) ? ["enforcement"] : []),
    ...(results.small && (contended(results.small.health.cpu) || contended(results.small.events.cpu)) ? ["small"] : []),
  ];
  if (busy.length > 0) {
    lines.push(
      `**Warning:** other processes used the machine during ${busy.join(", ")} (see *other processes* / *CPU pressure*); workerd runs every isolate on one thread, so those numbers are pessimistic. Re-run on a quiet machine.`,
      "",
    );
  }
  for (const r of telemetry) {
    if (r.error) lines.push(`**${r.name} did not complete:** ${r.error}`, "");
  }
  if (results.enforcement?.error) lines.push(`**enforcement:** ${results.enforcement.error}`, "");
  for (const failure of results.failures) lines.push(`**Failed:** ${failure.split("\n")[0]}`, "");
  for (const r of telemetry) lines.push(...profileSection(r));
  lines.push(
    "## How to read it",
    "",
    "- *End to end* = 0.95·N ÷ (time from the first request until 95 % of the N events are rows in D1); the last 5 % are excluded because the shards hold a partial buffer up to `FLUSH_DELAY_MS` (5 s) before flushing it. *Ingress* is N ÷ time until the last 202.",
    "- *Ingest → visible* is per event: from the 202 of the request that carried it until a poll of D1 first sees its row (ids name their request; each poll counts the rows added since the last one, by request). Percentiles are over all N events.",
    "- Per-1k figures are deltas of `GET /v1/admin/metrics` over the measured window (after a 1,000-event warm-up), divided by N. Durable Object requests = shard RPCs from the consumer + shard alarm invocations; the rate limiter adds at most one sync per isolate per 250 ms, whatever the request rate (see the counters and small-request sections).",
    "- *Queue consumer time per event* = the summed durations of the queue batches (wrangler's `QUEUE shipyard-telemetry a/b (ms)` lines) ÷ N: for B the consumer and its whole D1 write (plus whatever else held the thread meanwhile), so its inverse is a floor of the rows/s one D1 writer takes on this core; for C the consumer and the shards' ingest (flushes run later, in alarms).",
    "- *D1 bytes per row* = the D1 database's size (pages × page size: every table and index) ÷ the rows of `runtime_events` after the arm: what an event costs against D1's 10 GB per database.",
    "- *Peak RSS* is the largest VmRSS of the workerd processes sampled at every poll over the measured window; the high-water mark (VmHWM) is since the process started, warm-up included.",
    "- Locally everything (Worker, queue consumer, every shard, D1, the queue broker) shares one workerd thread, so this measures CPU per event on one core, not the distributed design: `bench/investigation.md` says where the time goes, `docs/scale.md` carries the per-event costs to Cloudflare's limits.",
    "- Raw timelines (D1 rows per poll, shard buffers every 2 s, every queue batch) are in `bench/out/`; wrangler's output in `.wrangler/bench-<arm>.log`.",
    "",
  );
  return lines.join("\n");
}
