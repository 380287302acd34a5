import { DurableObject } from "cloudflare:workers";

/** Counter shard (being built; see issue 3). */
export class CounterShard extends DurableObject<Env> {}
