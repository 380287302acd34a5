import { DurableObject } from "cloudflare:workers";

/** Sliding-window rate limiter shard (being built; see issue 3). */
export class RateLimitShard extends DurableObject<Env> {}
