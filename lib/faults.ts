/**
 * Named fault-injection points, for the fault matrix in ../shared/RELIABILITY.md.
 *
 * Production code calls `fault(point, context)` at the places where the real world can fail
 * (a D1 batch, a shard RPC, between a D1 commit and the buffer delete). Nothing is armed unless a
 * test arms it, so in production each call is a single Map lookup on an empty map.
 * Tests run in the same isolate as the Worker and its Durable Objects (the vitest plugin runs
 * them together), so arming here reaches the code under test.
 */
export type FaultPoint =
  | "d1.batch"
  | "d1.run"
  | "queue.send"
  | "consumer.shard_rpc"
  | "shard.ingest"
  | "shard.ingest.after_write"
  | "shard.flush.after_d1_commit"
  | "workflow.step.after_effect"
  | "deploy.status"
  | "rate_limit.shard"
  | "rate_limit.d1";

export interface FaultSpec {
  /** How many times to fire before disarming itself (default: until disarmed). */
  times?: number;
  /** Only fire when this returns true for the call's context. */
  when?: (context: Record<string, unknown>) => boolean;
  /** What to throw (default: an Error naming the point). */
  error?: () => unknown;
}

interface Armed extends FaultSpec {
  fired: number;
}

const armed = new Map<FaultPoint, Armed>();

/** Throws if a test armed `point` (and its `when` matches). */
export function fault(point: FaultPoint, context: Record<string, unknown> = {}): void {
  if (armed.size === 0) return;
  const spec = armed.get(point);
  if (!spec) return;
  if (spec.when && !spec.when(context)) return;
  spec.fired++;
  if (spec.times !== undefined && spec.fired >= spec.times) armed.delete(point);
  throw spec.error ? spec.error() : new Error(`injected fault at ${point}`);
}

/** Test API: arm a fault point. Returns a function reporting how often it fired. */
export function armFault(point: FaultPoint, spec: FaultSpec = {}): () => number {
  const entry: Armed = { ...spec, fired: 0 };
  armed.set(point, entry);
  return () => entry.fired;
}

/** Test API: disarm one point, or all of them. */
export function disarmFaults(point?: FaultPoint): void {
  if (point) armed.delete(point);
  else armed.clear();
}
