import { config } from "../lib/config.ts";
import { D1Client } from "../lib/d1.ts";
import { log } from "../lib/log.ts";

const DAY_MS = 86_400_000;
/** Rows deleted per statement, and statements per run: bounded work per invocation. */
export const PRUNE_CHUNK = 5_000;
const PRUNE_MAX_CHUNKS = 100;

/** The delete of one chunk: the oldest stored rows first, through `runtime_events_received_at`. */
export const PRUNE_SQL =
  "DELETE FROM runtime_events WHERE rowid IN (SELECT rowid FROM runtime_events WHERE received_at < ? LIMIT ?)";

/**
 * Deletes `runtime_events` stored more than `EVENT_RETENTION_DAYS` (default 30) ago, in bounded
 * chunks so one run never holds D1's single writer for long. Returns rows deleted.
 *
 * Retention goes by `received_at` (when Shipyard stored the row), not by the producer's `ts`: it
 * only grows, so its index is appended to rather than written at random (migration 0009), and a
 * producer with a wrong clock can neither make rows vanish early nor keep them forever.
 */
export async function pruneRuntimeEvents(env: Env, now: number = Date.now()): Promise<number> {
  const d1 = new D1Client(env.DB);
  const days = config(env).EVENT_RETENTION_DAYS;
  const cutoff = now - days * DAY_MS;
  let deleted = 0;
  for (let chunk = 0; chunk < PRUNE_MAX_CHUNKS; chunk++) {
    const result = await d1.run(d1.prepare(PRUNE_SQL).bind(cutoff, PRUNE_CHUNK));
    deleted += result.meta.changes;
    if (result.meta.changes < PRUNE_CHUNK) break;
  }
  log.info("runtime_events_pruned", { deleted, retention_days: days, cutoff });
  return deleted;
}
