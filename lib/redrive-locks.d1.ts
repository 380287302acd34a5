/**
 * One running redrive task per source queue (D1 `redrive_locks`). A lock is a lease: the task
 * renews it every round, and a lease that ran out (a task that died without releasing it) can be
 * taken over, so a lost task never blocks redrives of its queue for long.
 */

/** How long a lease lasts without renewal. Rounds run every second (at most every minute while backing off). */
export const REDRIVE_LEASE_MS = 10 * 60_000;

/**
 * Takes the lock of every queue in `queues` for `taskId`, or none: returns the queue and task that
 * hold a lock first, after giving back any this call took.
 */
export async function acquireRedriveLocks(
  db: D1Database,
  taskId: string,
  queues: readonly string[],
  now: number = Date.now(),
): Promise<{ ok: true } | { ok: false; queue: string; heldBy: string }> {
  if (queues.length === 0) return { ok: true };
  const takes = queues.map((queue) =>
    db
      .prepare(
        `INSERT INTO redrive_locks (source_queue, task_id, acquired_at, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(source_queue) DO UPDATE SET
           task_id = excluded.task_id, acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
         WHERE redrive_locks.expires_at < excluded.acquired_at OR redrive_locks.task_id = excluded.task_id`,
      )
      .bind(queue, taskId, now, now + REDRIVE_LEASE_MS),
  );
  const holders = db
    .prepare("SELECT source_queue, task_id FROM redrive_locks WHERE source_queue IN (SELECT value FROM json_each(?))")
    .bind(JSON.stringify(queues));
  const results = await db.batch<{ source_queue: string; task_id: string }>([...takes, holders]);
  const taken = results.at(-1)?.results ?? [];
  const conflict = taken.find((row) => row.task_id !== taskId);
  if (!conflict) return { ok: true };
  await releaseRedriveLocks(db, taskId);
  return { ok: false, queue: conflict.source_queue, heldBy: conflict.task_id };
}

/** Extends the leases `taskId` holds (put into the round's D1 batch). */
export function renewRedriveLocksStatement(
  db: D1Database,
  taskId: string,
  now: number = Date.now(),
): D1PreparedStatement {
  return db.prepare("UPDATE redrive_locks SET expires_at = ? WHERE task_id = ?").bind(now + REDRIVE_LEASE_MS, taskId);
}

/** Gives back every lock `taskId` holds. */
export async function releaseRedriveLocks(db: D1Database, taskId: string): Promise<void> {
  await db.prepare("DELETE FROM redrive_locks WHERE task_id = ?").bind(taskId).run();
}
