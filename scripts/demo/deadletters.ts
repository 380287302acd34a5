/**
 * The dead-letter part of the demo. Poison first: messages that fail their queue's envelope schema
 * go on the three queues with the on-call raw send; each consumer refuses them at once and the
 * archive shows them with the zod reason. A redrive (SQS style, capped per second) sends them
 * back; poison stays poison, so they return to the archive under their old id with the attempts
 * added up. Then a fixable one: a valid telemetry envelope put straight on the dead-letter queue
 * (archived as the queue giving up on it), redriven: its events are stored, once; archived and
 * redriven a second time, they are still stored once (the pipeline dedupes by event id).
 */
import type { CallOutput } from "../../lib/api-client.ts";
import { type DeadLetter, RedriveAcceptedSchema, type RedriveStatus } from "../../schemas/dlq.schema.ts";
import { envelope } from "../../schemas/envelope.schema.ts";
import type { RuntimeEvent } from "../../schemas/runtime-event.schema.ts";
import { type Phase, fmt } from "../lib/report.ts";
import { ADMIN_TOKEN, type Stack } from "../lib/stack.ts";
import { apiCall, brief, call, errorCode, waitFor } from "./api.ts";
import { type DemoContext, SECTION, need } from "./context.ts";

export interface DeadLettersOptions {
  seed: number;
  /** How long to wait for archiving, redrives and storage. */
  timeoutMs: number;
}

interface Poison {
  queue: "shipyard-telemetry" | "shipyard-counters" | "shipyard-deploys";
  /** Unique text inside the body: how the demo finds it in the archive. */
  marker: string;
  what: string;
  body: unknown;
}

export interface DeadLettersState {
  poison: Poison[];
  /** marker → archive row before the redrive. */
  archived: Map<string, DeadLetter>;
}

const DLQ = "Dead letters";
const POISON = "Dead letters: poison (queue · zod reason · attempts before → after redrive)";
const TIMES = SECTION.times;
const MAX_PER_SECOND = 5;
const FIXABLE_EVENTS = 5;

function state(ctx: DemoContext): DeadLettersState {
  return need(ctx.deadLetters, "dead-letter state");
}

const increment = (id: string) => ({ id, scope: "post", key: "demo", field: "likes", delta: 1 });

/** Ten bodies, each wrong in its own way; only the archive's reason tells them apart. */
function poisonMessages(seed: number): Poison[] {
  const now = Date.now();
  // Zero-padded, so that no marker is part of another (poison-1 would be found inside poison-10).
  const marker = (n: number) => `demo-${seed}-poison-${String(n).padStart(2, "0")}`;
  const event = (id: string) => ({ id, project_id: "acme-storefront", type: "log", ts: now, data: { level: "info" } });
  const head = (n: number) => ({ v: 1, id: marker(n), created_at: now });
  return [
    {
      queue: "shipyard-telemetry",
      marker: marker(1),
      what: "no events",
      body: { ...head(1), type: "telemetry.events", events: [] },
    },
    {
      queue: "shipyard-telemetry",
      marker: marker(2),
      what: "envelope version 2",
      body: { ...head(2), v: 2, type: "telemetry.events", events: [event(marker(2))] },
    },
    {
      queue: "shipyard-telemetry",
      marker: marker(3),
      what: "ts is text",
      body: { ...head(3), type: "telemetry.events", events: [{ ...event(marker(3)), ts: "yesterday" }] },
    },
    {
      queue: "shipyard-telemetry",
      marker: marker(4),
      what: "not an envelope",
      body: `${marker(4)}: not an envelope at all`,
    },
    {
      queue: "shipyard-counters",
      marker: marker(5),
      what: "delta is text",
      body: { ...head(5), type: "counters.increments", increments: [{ ...increment(marker(5)), delta: "one" }] },
    },
    {
      queue: "shipyard-counters",
      marker: marker(6),
      what: "unknown envelope type",
      body: { ...head(6), type: "counters.increment", increments: [increment(marker(6))] },
    },
    {
      queue: "shipyard-counters",
      marker: marker(7),
      what: "unknown scope",
      body: { ...head(7), type: "counters.increments", increments: [{ ...increment(marker(7)), scope: "group" }] },
    },
    {
      queue: "shipyard-deploys",
      marker: marker(8),
      what: "project id not a slug",
      body: { ...head(8), type: "deploys.requested", deploy_id: marker(8), project_id: "Not A Slug!", kind: "deploy" },
    },
    {
      queue: "shipyard-deploys",
      marker: marker(9),
      what: "unknown deploy kind",
      body: {
        ...head(9),
        type: "deploys.requested",
        deploy_id: marker(9),
        project_id: "sample-tenant",
        kind: "teleport",
      },
    },
    { queue: "shipyard-deploys", marker: marker(10), what: "fields missing", body: { id: marker(10) } },
  ];
}

/** A consumer's reason without the common prefix, on one line (zod's pretty errors span several). */
function reason(row: DeadLetter | undefined, max: number): string {
  return brief((row?.last_error ?? "?").replace(/^envelope failed its schema:\s*/, ""), max);
}

/** Archived messages whose last failure is at or after `since`, every page. */
async function listArchive(stack: Stack, since: number): Promise<DeadLetter[]> {
  const items: DeadLetter[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10; page++) {
    const answer: CallOutput<"listDeadLetters"> = await apiCall(stack, "listDeadLetters", {
      query: { since, limit: 100, cursor },
    });
    items.push(...answer.items);
    cursor = answer.next_cursor ?? undefined;
    if (cursor === undefined) break;
  }
  return items;
}

/** The archive rows carrying each marker (the newest, when a marker is there twice). */
function byMarker(items: readonly DeadLetter[], markers: readonly string[]): Map<string, DeadLetter> {
  const found = new Map<string, DeadLetter>();
  for (const item of items) {
    const text = JSON.stringify(item.body);
    for (const marker of markers) {
      const seen = found.get(marker);
      if (text.includes(marker) && (!seen || seen.archived_at < item.archived_at)) found.set(marker, item);
    }
  }
  return found;
}

async function rawSend(stack: Stack, queue: string, body: unknown): Promise<void> {
  await apiCall(stack, "sendToQueue", { params: { queue }, body: { body } });
}

/**
 * Starts a redrive of `ids` and follows it to the end with a progress line. A 409 means the
 * previous task still holds the queue's redrive lock for a moment: retried.
 */
async function redrive(
  ctx: DemoContext,
  ids: string[],
  timeoutMs: number,
): Promise<{ status: RedriveStatus; ms: number }> {
  const stack = need(ctx.stack, "stack");
  const started = Date.now();
  const accepted = await waitFor(
    stack,
    { timeoutMs, intervalMs: 1000, describe: () => "the redrive lock stayed taken (409 redrive_running)" },
    async () => {
      const answer = await call(stack, "POST", "/v1/admin/dlq/redrive", {
        token: ADMIN_TOKEN,
        body: { ids, max_per_second: MAX_PER_SECOND },
      });
      if (answer.status === 409 && errorCode(answer.body) === "redrive_running") return undefined;
      if (answer.status !== 202)
        throw new Error(`POST /v1/admin/dlq/redrive answered ${answer.status}: ${brief(answer.body)}`);
      return RedriveAcceptedSchema.parse(answer.body);
    },
  );
  let status: RedriveStatus | undefined;
  const final = await waitFor(
    stack,
    {
      timeoutMs,
      intervalMs: 250,
      describe: () => `redrive ${accepted.task_id} is ${status?.status ?? "?"}, moved ${status?.moved ?? "?"}`,
    },
    async () => {
      status = await apiCall(stack, "getRedrive", { params: { task_id: accepted.task_id } });
      const width = 20;
      const filled = status.total > 0 ? Math.round((status.moved / status.total) * width) : width;
      ctx.progress.update(
        `redrive [${"█".repeat(filled)}${"░".repeat(width - filled)}] ${status.moved}/${status.total} moved · ${status.round_count} rounds at ≤ ${status.max_per_second}/s · ${status.status} · ${fmt.s(Date.now() - started)}`,
      );
      return status.status === "running" || status.status === "cancelling" ? undefined : status;
    },
  );
  const ms = Date.now() - started;
  ctx.progress.done(
    `redrive ${final.status}: ${final.moved}/${final.total} moved, ${final.skipped} skipped, ${final.failed} failed, ${final.round_count} rounds (${final.rounds.map((round) => round.sent).join(" + ")}) in ${fmt.s(ms)}`,
  );
  return { status: final, ms };
}

/** Rows in D1 for these event ids (the primary key allows at most one each). */
async function storedCount(stack: Stack, ids: readonly string[]): Promise<number> {
  return stack.countD1(
    `SELECT COUNT(*) AS n FROM runtime_events WHERE id IN (${ids.map((id) => `'${id}'`).join(", ")})`,
  );
}

export function deadLettersPhases(options: DeadLettersOptions): Phase<DemoContext>[] {
  return [
    {
      name: "dlq-poison",
      title: "Put poison messages on the queues; wait until the archive shows them with their reason",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const since = Date.now();
        const poison = poisonMessages(options.seed);
        ctx.deadLetters = { poison, archived: new Map() };
        for (const message of poison) await rawSend(stack, message.queue, message.body);
        const perQueue = Map.groupBy(poison, (message) => message.queue);
        console.log(
          `  sent ${poison.length} with POST /v1/admin/queues/:queue/send: ${[...perQueue].map(([queue, list]) => `${queue} ${list.length}`).join(", ")}`,
        );
        const markers = poison.map((message) => message.marker);
        let found = new Map<string, DeadLetter>();
        found = await waitFor(
          stack,
          {
            timeoutMs: options.timeoutMs,
            intervalMs: 500,
            describe: () => `${found.size} of ${poison.length} archived`,
          },
          async () => {
            found = byMarker(await listArchive(stack, since), markers);
            ctx.progress.update(
              `${found.size}/${poison.length} poison messages in the archive · ${fmt.s(Date.now() - since)}`,
            );
            return found.size === poison.length ? found : undefined;
          },
        );
        state(ctx).archived = found;
        ctx.progress.done(`all ${poison.length} archived ${fmt.s(Date.now() - since)} after the first send`);
        for (const message of poison) {
          const row = found.get(message.marker);
          console.log(`  ${message.queue.padEnd(18)} ${message.what.padEnd(22)} → ${reason(row, 90)}`);
        }
        const withReason = [...found.values()].filter((row) => row.last_error.length > 0).length;
        const distinct = new Set([...found.values()].map((row) => row.id)).size;
        const underSource = poison.filter(
          (message) => found.get(message.marker)?.source_queue === message.queue,
        ).length;
        ctx.report.set(
          DLQ,
          "poison messages sent",
          `${poison.length} (${[...perQueue].map(([queue, list]) => `${queue} ${list.length}`).join(", ")})`,
        );
        ctx.report.set(DLQ, "dead-lettered (archived with their reason)", withReason);
        ctx.report.set(TIMES, "poison send → all archived", fmt.s(Date.now() - since));
        ctx.report.check(
          "dead letters: every poison message archived with its reason",
          withReason === poison.length && distinct === poison.length && underSource === poison.length,
          `${distinct} archive rows for ${poison.length} messages, ${withReason} with a reason, ${underSource} under their source queue`,
        );
      },
    },
    {
      name: "dlq-redrive-poison",
      title: `Redrive the poison messages (≤ ${MAX_PER_SECOND}/s); poison comes back with its attempts counted`,
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const { poison, archived } = state(ctx);
        const ids = poison.map((message) => need(archived.get(message.marker), message.marker).id);
        const since = Date.now();
        const { status, ms } = await redrive(ctx, ids, options.timeoutMs);
        const markers = poison.map((message) => message.marker);
        // Back in the archive: the consumers refused them again, and the archive kept each one's
        // id and added the new delivery to its attempts.
        let again = new Map<string, DeadLetter>();
        again = await waitFor(
          stack,
          {
            timeoutMs: options.timeoutMs,
            intervalMs: 500,
            describe: () => `${again.size} of ${poison.length} back in the archive with more attempts`,
          },
          async () => {
            const rows = byMarker(await listArchive(stack, since), markers);
            again = new Map(
              [...rows].filter(([marker, row]) => row.attempts > (archived.get(marker)?.attempts ?? Infinity)),
            );
            ctx.progress.update(`${again.size}/${poison.length} back in the archive with attempts counted`);
            return again.size === poison.length ? again : undefined;
          },
        );
        ctx.progress.done(
          `all ${poison.length} back in the archive ${fmt.s(Date.now() - since)} after the redrive started`,
        );
        for (const [index, message] of poison.entries()) {
          const before = archived.get(message.marker);
          const after = again.get(message.marker);
          ctx.report.set(
            POISON,
            `${index + 1}. ${message.what}`,
            `${message.queue} · ${reason(after, 70)} · ${before?.attempts ?? "?"} → ${after?.attempts ?? "?"}`,
          );
        }
        const sameIds = poison.every((message) => archived.get(message.marker)?.id === again.get(message.marker)?.id);
        const fastest = Math.max(0, ...status.rounds.map((round) => round.sent));
        ctx.report.set(
          DLQ,
          "poison redrive",
          `${status.status}: ${status.moved}/${status.total} moved in ${status.round_count} rounds (${status.rounds.map((round) => round.sent).join(" + ")}) at ≤ ${status.max_per_second}/s, ${fmt.s(ms)}`,
        );
        ctx.report.set(DLQ, "poison back in the archive (same id, attempts added)", again.size);
        ctx.report.check(
          "dead letters: redrive moved every poison message within its rate",
          status.status === "completed" && status.moved === poison.length && fastest <= MAX_PER_SECOND,
          `${status.status}, ${status.moved}/${poison.length} moved, at most ${fastest} per round (limit ${MAX_PER_SECOND}/s)`,
        );
        ctx.report.check(
          "dead letters: poison archived again with attempts counted",
          again.size === poison.length && sameIds,
          `${again.size} of ${poison.length} re-archived with more attempts, ${sameIds ? "each under its old id" : "some under a new id"}`,
        );
      },
    },
    {
      name: "dlq-fixable",
      title: "A valid envelope in the dead-letter queue: redriven, its events stored exactly once (twice over)",
      run: async (ctx) => {
        const stack = need(ctx.stack, "stack");
        const eventIds = Array.from({ length: FIXABLE_EVENTS }, (_, i) => `demo-${options.seed}-dlq-event-${i}`);
        const events: RuntimeEvent[] = eventIds.map((id, i) => ({
          id,
          project_id: "acme-storefront",
          type: "log",
          ts: Date.now(),
          data: { level: "warn", message: `delivered by a redrive (${i + 1}/${FIXABLE_EVENTS})` },
        }));
        // Built with the producers' own envelope factory: valid by construction.
        const body = envelope("telemetry.events", { events }, `demo-${options.seed}-dlq-envelope`);
        const marker = body.id;
        const storedBefore = await storedCount(stack, eventIds);

        /** Raw send to the dead-letter queue, then wait for the archive row (newer than `since`). */
        const archive = async (since: number): Promise<DeadLetter> => {
          await rawSend(stack, "shipyard-telemetry-dlq", body);
          return waitFor(
            stack,
            { timeoutMs: options.timeoutMs, intervalMs: 500, describe: () => "the envelope is not in the archive" },
            async () => byMarker(await listArchive(stack, since), [marker]).get(marker),
          );
        };
        /** Redrive it, then wait until the consumer handed it to the shards and they hold nothing. */
        const redriveAndSettle = async (row: DeadLetter) => {
          const rpcsBefore = (await stack.metrics()).shard_rpcs;
          const result = await redrive(ctx, [row.id], options.timeoutMs);
          await waitFor(
            stack,
            {
              timeoutMs: options.timeoutMs,
              intervalMs: 500,
              describe: () => "the redriven envelope never reached the shards, or they still buffer it",
            },
            async () => {
              const metrics = await stack.metrics();
              const stored = await storedCount(stack, eventIds);
              ctx.progress.update(
                `${stored}/${FIXABLE_EVENTS} events in D1 · ${metrics.buffered} rows buffered in shards`,
              );
              return metrics.shard_rpcs > rpcsBefore && metrics.buffered === 0 ? true : undefined;
            },
          );
          const gone = await call(stack, "GET", `/v1/admin/dlq/${row.id}`, { token: ADMIN_TOKEN });
          return { ...result, stored: await storedCount(stack, eventIds), archiveGone: gone.status === 404 };
        };

        const first = await archive(Date.now());
        console.log(`  archived as ${first.id}: ${brief(first.last_error, 100)} (attempts ${first.attempts})`);
        const once = await redriveAndSettle(first);
        console.log(
          `  after the redrive: ${once.stored}/${FIXABLE_EVENTS} events in D1, archive row ${once.archiveGone ? "gone" : "still there"}`,
        );
        // The same body dead-lettered again (a duplicate delivery), and redriven again.
        const second = await archive(Date.now());
        const twice = await redriveAndSettle(second);
        console.log(`  after a second archive + redrive: ${twice.stored}/${FIXABLE_EVENTS} events in D1`);

        ctx.report.set(DLQ, "valid envelope archived as", brief(first.last_error, 100));
        ctx.report.set(
          DLQ,
          "valid envelope redriven (moved)",
          `${once.status.moved} then ${twice.status.moved} (${fmt.s(once.ms)}, ${fmt.s(twice.ms)})`,
        );
        ctx.report.set(
          DLQ,
          "its events stored (before / after redrive / after a second one)",
          `${storedBefore} / ${once.stored} / ${twice.stored} of ${FIXABLE_EVENTS}`,
        );
        ctx.report.check(
          "dead letters: redriven envelope stored exactly once",
          storedBefore === 0 && once.stored === FIXABLE_EVENTS && once.status.moved === 1 && once.archiveGone,
          `${once.stored} of ${FIXABLE_EVENTS} events stored after the redrive (${storedBefore} before); archive row ${once.archiveGone ? "deleted" : "still there"}`,
        );
        ctx.report.check(
          "dead letters: a repeated redrive stores nothing twice",
          twice.stored === FIXABLE_EVENTS && twice.status.moved === 1,
          `${twice.stored} rows for ${FIXABLE_EVENTS} event ids after the same envelope was redriven twice`,
        );
      },
    },
  ];
}
