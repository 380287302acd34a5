import { config } from "../lib/config.ts";
import { ok } from "./responses.ts";

/** `GET /v1/health`: liveness plus the configuration this instance runs with (no secrets). */
export function getHealth(_request: Request, env: Env): Response {
  const cfg = config(env);
  return ok({
    ok: true,
    service: "shipyard",
    modes: { runtime_events: cfg.RUNTIME_EVENT_DO_MODE, counters: cfg.COUNTER_DO_MODE },
    shard_count: cfg.SHARD_COUNT,
  });
}
