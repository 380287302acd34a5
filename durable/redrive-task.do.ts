import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { type AuditType, audit } from "../lib/audit.d1.ts";
import { backoffMs } from "../lib/backoff.ts";
import {
  type ArchivePosition,
  type Redriven,
  countDeadLetters,
  readForRedriveStatement,
  selectForRedrive,
  settleRedrivenStatements,
} from "../lib/dead-letters.d1.ts";
import { describeError, log } from "../lib/log.ts";
import { sendAll } from "../lib/queue.ts";
import { queueBinding, sourceQueueOf } from "../lib/queues.ts";
import { acquireRedriveLocks, releaseRedriveLocks, renewRedriveLocksStatement } from "../lib/redrive-locks.d1.ts";
import { type Result, assertNever, err, ok } from "../lib/result.ts";
import {
  MAX_REDRIVE_PER_SECOND,
  QueueNameSchema,
  type RedriveStatusName,
  SourceQueueSchema,
} from "../schemas/dlq.schema.ts";
import type { RedriveStatusSchema } from "../schemas/dlq.schema.ts";
import {
  type ItemRow,
  type ItemState,
  REDRIVE_TASK_MIGRATIONS,
  type RoundRow,
  type TaskRow,
} from "./redrive-task.migrations.ts";
import { applySchema } from "./sql-schema.ts";

/** Most archived messages one task takes; `truncated` tells on-call to run another afterwards. */
export const MAX_TASK_MESSAGES = 100_000;
/** A round never starts sooner than this after the previous one ended: the velocity window. */
export const ROUND_INTERVAL_MS = 1_000;
/** Consecutive failed rounds (D1 or the queue unavailable) before the task gives up. */
const MAX_ROUND_FAILURES = 10;
/** Backoff between failed rounds: 1 s, 2 s, 4 s … capped at 1 min (well inside the lock lease). */
const FAILURE_BACKOFF_BASE_MS = 1_000;
const FAILURE_BACKOFF_CAP_MS = 60_000;
/** Archive ids per D1 read, so a round's bodies (up to 128 KB each) come back in bounded answers. */
const READ_CHUNK = 50;
/** Ids per snapshot query at start. */
const SNAPSHOT_PAGE = 5_000;
/** Rounds shown in the status. */
const STATUS_ROUNDS = 20;
/** A finished task's status stays readable this long, then its storage is cleared by alarm. */
export const TASK_RETENTION_MS = 7 * 86_400_000;

/** What to redrive (the HTTP request, validated; ids are archive ids). */
export const RedriveSpecSchema = z.object({
  taskId: z.string().min(1).max(128),
  filter: z.object({
    queue: z.string().optional(),
    type: z.string().optional(),
    projectId: z.string().optional(),
    reason: z.string().optional(),
    since: z.number().optional(),
    until: z.number().optional(),
    ids: z.array(z.string()).optional(),
  }),
  maxPerSecond: z.number().int().min(1).max(MAX_REDRIVE_PER_SECOND),
  dryRun: z.boolean(),
  targetQueue: SourceQueueSchema.nullable(),
  /** Who asked (the admin principal id), for the audit trail. */
  actor: z.string().min(1),
});
export type RedriveSpec = z.infer<typeof RedriveSpecSchema>;

/** The task's status as the API shows it. */
export type RedriveStatus = z.infer<typeof RedriveStatusSchema>;

export type RedriveTaskError =
  | { reason: "not_found" | "invalid" | "already_started" | "unavailable" | "finished"; message: string }
  | { reason: "conflict"; message: string; queue: string; heldBy: string };

const TERMINAL: ReadonlySet<RedriveStatusName> = new Set(["completed", "cancelled", "failed"]);
const StatusNameSchema = z.enum(["running", "completed", "cancelling", "cancelled", "failed"]);
const QueuesSchema = z.array(z.string());

/**
 * A redrive task, SQS style: moves archived dead letters back to their source queue (or a named
 * queue) at no more than `maxPerSecond`, in alarm rounds. One object per task id.
 *
 * Start takes a snapshot of the matching archive ids (so `total` is fixed and re-archived copies
 * are not chased) and the redrive lock of every source queue in it (D1 `redrive_locks`: one running
 * task per source queue). Each round sends at most `maxPerSecond` messages and the next round runs
 * at least a second after it ended, so no one-second window ever sees more. An archive row is
 * deleted only after its send resolved, and only if nobody archived it again meanwhile; a crash in
 * between leaves the row, and a repeated redrive is harmless because the body (and every id in it)
 * is sent unchanged and each stage downstream dedupes on those ids.
 */
export class RedriveTask extends DurableObject<Env> {
  readonly #sql: SqlStorage;
  /** A round is awaiting D1 or a queue: a cancel then lets it finish and stop. */
  #roundRunning = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = ctx.storage.sql;
    applySchema(ctx.storage, REDRIVE_TASK_MIGRATIONS);
  }

  /**
   * Starts the task: snapshots the matching archive ids, takes the source queues' locks and arms
   * the first round at once. A dry run only counts. Conflict when another task is running on one
   * of the source queues.
   */
  async start(input: RedriveSpec): Promise<Result<RedriveStatus, RedriveTaskError>> {
    const parsed = RedriveSpecSchema.safeParse(input);
    if (!parsed.success) return err({ reason: "invalid", message: z.prettifyError(parsed.error) });
    const spec = parsed.data;
    if (this.#task()) return err({ reason: "already_started", message: `task ${spec.taskId} was started before` });
    const db = this.env.DB;
    const now = Date.now();

    if (spec.dryRun) {
      let total: number;
      try {
        total = await countDeadLetters(db, spec.filter);
      } catch (error) {
        return err({ reason: "unavailable", message: `could not read the archive: ${describeError(error)}` });
      }
      this.#insertTask(spec, "completed", total, false, [], now);
      await this.ctx.storage.setAlarm(now + TASK_RETENTION_MS);
      return ok(this.#status());
    }

    let selected: { id: string; source_queue: string }[];
    try {
      selected = await this.#snapshot(spec);
    } catch (error) {
      return err({ reason: "unavailable", message: `could not read the archive: ${describeError(error)}` });
    }
    const truncated = selected.length > MAX_TASK_MESSAGES;
    if (truncated) selected = selected.slice(0, MAX_TASK_MESSAGES);
    const queues = [...new Set(selected.map((row) => row.source_queue))].toSorted();
    try {
      const lock = await acquireRedriveLocks(db, spec.taskId, queues, now);
      if (!lock.ok) {
        return err({
          reason: "conflict",
          message: `redrive task ${lock.heldBy} is running on ${lock.queue}; cancel it or wait for it to finish`,
          queue: lock.queue,
          heldBy: lock.heldBy,
        });
      }
    } catch (error) {
      return err({ reason: "unavailable", message: `could not take the redrive lock: ${describeError(error)}` });
    }

    const status = selected.length === 0 ? "completed" : "running";
    this.ctx.storage.transactionSync(() => {
      this.#insertTask(spec, status, selected.length, truncated, queues, now);
      for (let i = 0; i < selected.length; i += SNAPSHOT_PAGE) {
        this.#sql.exec(
          `INSERT INTO items (archive_id, source_queue, state)
           SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'pending' FROM json_each(?)`,
          JSON.stringify(selected.slice(i, i + SNAPSHOT_PAGE).map((row) => [row.id, row.source_queue])),
        );
      }
    });
    await this.ctx.storage.setAlarm(status === "running" ? now : now + TASK_RETENTION_MS);
    await this.#audit(spec, "redrive.started", { total: selected.length, truncated, source_queues: queues });
    log.info("redrive_started", { task_id: spec.taskId, total: selected.length, source_queues: queues });
    return ok(this.#status());
  }

  /** The task's status, counts and latest rounds. */
  async status(): Promise<Result<RedriveStatus, RedriveTaskError>> {
    if (!this.#task()) return err({ reason: "not_found", message: "no such redrive task" });
    return ok(this.#status());
  }

  /**
   * Stops the task: no message is sent after this returns, except those of a round already
   * awaiting its send (that round then ends the task as `cancelled`). Idempotent; a task that
   * already completed or failed cannot be cancelled.
   */
  async cancel(actor: string): Promise<Result<RedriveStatus, RedriveTaskError>> {
    const task = this.#task();
    if (!task) return err({ reason: "not_found", message: "no such redrive task" });
    const status = StatusNameSchema.parse(task.status);
    switch (status) {
      case "cancelling":
      case "cancelled":
        return ok(this.#status());
      case "completed":
      case "failed":
        return err({ reason: "finished", message: `the task already ${status === "failed" ? "failed" : "completed"}` });
      case "running":
        this.#sql.exec("UPDATE task SET status = 'cancelling', cancelled_by = ?, updated_at = ?", actor, Date.now());
        if (!this.#roundRunning) await this.#finish("cancelled", null);
        return ok(this.#status());
      default:
        return assertNever(status);
    }
  }

  override async alarm(): Promise<void> {
    const task = this.#task();
    if (!task) return;
    const status = StatusNameSchema.parse(task.status);
    if (status === "running") return this.#round(task);
    if (status === "cancelling") return this.#finish("cancelled", null);
    // A finished task: clear its storage once its status has been kept long enough.
    const expiresAt = (task.finished_at ?? task.updated_at) + TASK_RETENTION_MS;
    if (Date.now() < expiresAt) {
      await this.ctx.storage.setAlarm(expiresAt);
      return;
    }
    this.ctx.storage.transactionSync(() => {
      this.#sql.exec("DELETE FROM rounds");
      this.#sql.exec("DELETE FROM items");
      this.#sql.exec("DELETE FROM task");
    });
  }

  /** Matching archive ids, oldest archived first, one more than a task takes (to tell truncation). */
  async #snapshot(spec: RedriveSpec): Promise<{ id: string; source_queue: string }[]> {
    const selected: { id: string; source_queue: string }[] = [];
    let after: ArchivePosition | null = null;
    while (selected.length <= MAX_TASK_MESSAGES) {
      const page = await selectForRedrive(this.env.DB, spec.filter, after, SNAPSHOT_PAGE);
      selected.push(...page);
      const last = page.at(-1);
      if (page.length < SNAPSHOT_PAGE || !last) break;
      after = { archivedAt: last.archived_at, id: last.id };
    }
    return selected;
  }

  /**
   * One round: settle what earlier rounds sent, then send at most `maxPerSecond` pending messages
   * and settle them; then schedule the next round a second after this one ended (or back off).
   */
  async #round(task: TaskRow): Promise<void> {
    const spec = RedriveSpecSchema.parse(JSON.parse(task.spec));
    const startedAt = Date.now();
    let sent = 0;
    let failure: string | null = null;
    this.#roundRunning = true;
    try {
      await this.#settle(spec.taskId);
      const pending = this.#sql
        .exec<ItemRow>("SELECT * FROM items WHERE state = 'pending' ORDER BY seq LIMIT ?", spec.maxPerSecond)
        .toArray();
      if (pending.length > 0) {
        sent = await this.#send(spec, pending);
        await this.#settle(spec.taskId);
      }
    } catch (error) {
      failure = describeError(error);
    } finally {
      this.#roundRunning = false;
    }

    const finishedAt = Date.now();
    const current = this.#task();
    if (!current) return;
    const counts = this.#counts();
    let next: number | null = null;
    let outcome: "completed" | "cancelled" | "failed" | null = null;
    const failures = failure === null ? 0 : current.failures + 1;
    if (current.status === "cancelling") outcome = "cancelled";
    else if (failure !== null && failures >= MAX_ROUND_FAILURES) outcome = "failed";
    else if (failure === null && counts.pending === 0 && counts.sent === 0) outcome = "completed";
    else if (failure !== null) next = finishedAt + backoffMs(failures, FAILURE_BACKOFF_BASE_MS, FAILURE_BACKOFF_CAP_MS);
    else next = finishedAt + ROUND_INTERVAL_MS;

    this.#sql.exec(
      "INSERT INTO rounds (started_at, finished_at, sent, next_at) VALUES (?, ?, ?, ?)",
      startedAt,
      finishedAt,
      sent,
      next,
    );
    this.#sql.exec("UPDATE task SET failures = ?, error = ?, updated_at = ?", failures, failure, finishedAt);
    if (failure !== null) {
      log.warn("redrive_round_failed", { task_id: spec.taskId, failures, error: failure });
    }
    if (outcome !== null) await this.#finish(outcome, outcome === "failed" ? failure : null);
    else if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  /**
   * Sends `items` to their queues and marks each `sent` once its send resolved. Reads the archive
   * rows first (renewing the locks in the same round trip); rows gone meanwhile are `skipped`.
   * Stops between queues if the task was cancelled. Returns how many were sent.
   */
  async #send(spec: RedriveSpec, items: readonly ItemRow[]): Promise<number> {
    const db = this.env.DB;
    const ids = items.map((item) => item.archive_id);
    const reads: D1PreparedStatement[] = [];
    for (let i = 0; i < ids.length; i += READ_CHUNK)
      reads.push(readForRedriveStatement(db, ids.slice(i, i + READ_CHUNK)));
    const results = await db.batch<ArchivedRow>([renewRedriveLocksStatement(db, spec.taskId), ...reads]);
    const rows = new Map(results.slice(1).flatMap((result) => result.results.map((row) => [row.id, row] as const)));

    const groups = new Map<string, { item: ItemRow; row: ArchivedRow; body: unknown }[]>();
    for (const item of items) {
      const row = rows.get(item.archive_id);
      if (!row) {
        this.#mark(item.archive_id, "skipped", null);
        continue;
      }
      const target = QueueNameSchema.safeParse(spec.targetQueue ?? row.source_queue);
      if (!target.success) {
        this.#mark(item.archive_id, "failed", `no queue named ${row.source_queue} to send it to`);
        continue;
      }
      let body: unknown;
      try {
        body = JSON.parse(row.body);
      } catch {
        this.#mark(item.archive_id, "failed", "the archived body is not JSON");
        continue;
      }
      const group = groups.get(target.data) ?? [];
      group.push({ item, row, body });
      groups.set(target.data, group);
    }

    let sent = 0;
    for (const [queue, group] of groups) {
      if (this.#task()?.status !== "running") break;
      const name = QueueNameSchema.parse(queue);
      await sendAll(
        queueBinding(this.env, name),
        name,
        group.map((entry) => entry.body),
      );
      this.ctx.storage.transactionSync(() => {
        for (const { item, row } of group) {
          this.#sql.exec(
            "UPDATE items SET state = 'sent', attempts = ?, last_failure_at = ?, target_queue = ? WHERE archive_id = ?",
            row.attempts,
            row.last_failure_at,
            sourceQueueOf(name),
            item.archive_id,
          );
        }
      });
      sent += group.length;
    }
    return sent;
  }

  /**
   * Settles sent messages in D1: their history goes to `message_failures` and their archive rows
   * are deleted (both only if the row is still at the version read), then they count as `moved`.
   * A D1 failure leaves them `sent`, to settle in the next round.
   */
  async #settle(taskId: string): Promise<void> {
    const sent = this.#sql
      .exec<ItemRow>("SELECT * FROM items WHERE state = 'sent' ORDER BY seq LIMIT ?", MAX_REDRIVE_PER_SECOND)
      .toArray();
    if (sent.length === 0) return;
    const moved: Redriven[] = sent.map((item) => ({
      id: item.archive_id,
      attempts: item.attempts ?? 0,
      lastFailureAt: item.last_failure_at ?? 0,
      queue: item.target_queue ?? item.source_queue,
    }));
    const db = this.env.DB;
    await db.batch([renewRedriveLocksStatement(db, taskId), ...settleRedrivenStatements(db, moved)]);
    this.#sql.exec(
      "UPDATE items SET state = 'moved' WHERE state = 'sent' AND archive_id IN (SELECT value FROM json_each(?))",
      JSON.stringify(moved.map((entry) => entry.id)),
    );
  }

  /** Ends the task: releases its locks, records it in the audit trail, keeps its status a while. */
  async #finish(status: "completed" | "cancelled" | "failed", error: string | null): Promise<void> {
    const task = this.#task();
    if (!task) return;
    const spec = RedriveSpecSchema.parse(JSON.parse(task.spec));
    const now = Date.now();
    this.#sql.exec(
      "UPDATE task SET status = ?, error = coalesce(?, error), finished_at = ?, updated_at = ?",
      status,
      error,
      now,
      now,
    );
    await this.ctx.storage.setAlarm(now + TASK_RETENTION_MS);
    try {
      await releaseRedriveLocks(this.env.DB, spec.taskId);
    } catch (releaseError) {
      // The lease runs out on its own (REDRIVE_LEASE_MS); until then the queue's next redrive waits.
      log.error("redrive_lock_release_failed", { task_id: spec.taskId, error: describeError(releaseError) });
    }
    const counts = this.#counts();
    const type: AuditType =
      status === "completed" ? "redrive.completed" : status === "cancelled" ? "redrive.cancelled" : "redrive.failed";
    await this.#audit(spec, type, {
      total: task.total,
      moved: counts.moved + counts.sent,
      skipped: counts.skipped,
      failed: counts.failed,
      pending: counts.pending,
      cancelled_by: task.cancelled_by,
      error,
    });
    log.info("redrive_finished", { task_id: spec.taskId, status, ...counts });
  }

  async #audit(spec: RedriveSpec, type: AuditType, details: Record<string, unknown>): Promise<void> {
    await audit(this.env.DB, {
      id: `redrive:${spec.taskId}:${type}`,
      type,
      actor: type === "redrive.cancelled" ? (this.#task()?.cancelled_by ?? spec.actor) : spec.actor,
      details: {
        task_id: spec.taskId,
        filter: spec.filter,
        max_per_second: spec.maxPerSecond,
        target_queue: spec.targetQueue,
        ...details,
      },
    });
  }

  #insertTask(
    spec: RedriveSpec,
    status: RedriveStatusName,
    total: number,
    truncated: boolean,
    queues: readonly string[],
    now: number,
  ): void {
    this.#sql.exec(
      `INSERT INTO task (id, spec, status, total, truncated, source_queues, created_at, updated_at, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      spec.taskId,
      JSON.stringify(spec),
      status,
      total,
      truncated ? 1 : 0,
      JSON.stringify(queues),
      now,
      now,
      TERMINAL.has(status) ? now : null,
    );
  }

  #mark(archiveId: string, state: ItemState, error: string | null): void {
    this.#sql.exec("UPDATE items SET state = ?, error = ? WHERE archive_id = ?", state, error, archiveId);
  }

  #task(): TaskRow | null {
    return this.#sql.exec<TaskRow>("SELECT * FROM task").toArray()[0] ?? null;
  }

  #counts(): Record<ItemState, number> {
    const counts: Record<ItemState, number> = { pending: 0, sent: 0, moved: 0, skipped: 0, failed: 0 };
    for (const row of this.#sql.exec<{ state: ItemState; n: number }>(
      "SELECT state, COUNT(*) AS n FROM items GROUP BY state",
    )) {
      counts[row.state] = row.n;
    }
    return counts;
  }

  #status(): RedriveStatus {
    const task = this.#task();
    if (!task) throw new Error("redrive task has no state");
    const spec = RedriveSpecSchema.parse(JSON.parse(task.spec));
    const counts = this.#counts();
    const roundCount = this.#sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM rounds").one().n;
    const rounds = this.#sql
      .exec<RoundRow>("SELECT * FROM rounds ORDER BY round DESC LIMIT ?", STATUS_ROUNDS)
      .toArray()
      .toReversed();
    return {
      task_id: task.id,
      status: StatusNameSchema.parse(task.status),
      dry_run: spec.dryRun,
      total: task.total,
      moved: counts.sent + counts.moved,
      skipped: counts.skipped,
      failed: counts.failed,
      pending: counts.pending,
      truncated: task.truncated === 1,
      max_per_second: spec.maxPerSecond,
      target_queue: spec.targetQueue,
      source_queues: QueuesSchema.parse(JSON.parse(task.source_queues)),
      created_at: task.created_at,
      updated_at: task.updated_at,
      finished_at: task.finished_at,
      error: task.error,
      round_count: roundCount,
      rounds: rounds.map((round) => ({ ...round })),
    };
  }
}

/** An archive row as a round reads it. */
type ArchivedRow = { id: string; source_queue: string; attempts: number; last_failure_at: number; body: string };

/** The RedriveTask object of a task id. */
export function redriveTask(env: Pick<Env, "REDRIVE_TASK">, taskId: string): DurableObjectStub<RedriveTask> {
  return env.REDRIVE_TASK.getByName(taskId);
}
