import { DurableObject } from "cloudflare:workers";

/** Dedupe store (being built; see issue 3). */
export class DedupeStore extends DurableObject<Env> {}
