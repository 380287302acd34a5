/**
 * Ingest-to-visible latency: when each event of a measured send became a row in D1, against the
 * 202 of the request that carried it.
 *
 * The benchmark's ids are `<prefix>-<n>` with `n` counting across the run, so request `r` carries
 * ids `r·batch … r·batch + batch − 1`. Each poll asks D1 for the rows added since the last poll
 * (`rowid` only grows: D1 has one writer), grouped by request, and records how many of each
 * request's events became visible then. An event's latency is the time of the poll that first saw
 * it minus the time its request was answered 202, so it is late by up to one poll interval.
 */
import { z } from "zod";
import type { Stack } from "../lib/stack.ts";

const GroupSchema = z.object({ r: z.coerce.number(), n: z.coerce.number(), last: z.coerce.number().nullable() });

/** How many events of request `request` a poll at `at` (epoch ms) saw for the first time. */
interface Seen {
  request: number;
  at: number;
  events: number;
}

export interface LatencySummary {
  /** Events whose latency is known (visible, and their request answered 202). */
  events: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Mean and largest time between two polls: the measurement's granularity. */
  pollMeanMs: number;
  pollMaxMs: number;
  /** "rowid" (incremental) or "scan" (every poll counts the whole table: a WITHOUT ROWID table). */
  method: "rowid" | "scan";
}

export class Visibility {
  readonly #stack: Stack;
  readonly #prefix: string;
  readonly #batch: number;
  #afterRowid = 0;
  #method: "rowid" | "scan" = "rowid";
  /** Visible events per request so far. */
  readonly #counts = new Map<number, number>();
  readonly #seen: Seen[] = [];
  readonly #polls: number[] = [];
  /** Rows of the measured run visible in D1. */
  visible = 0;

  constructor(stack: Stack, prefix: string, batch: number) {
    this.#stack = stack;
    this.#prefix = prefix;
    this.#batch = batch;
  }

  /** Remembers where D1 stands before the measured send (earlier rows, e.g. the warm-up's, are not counted). */
  async start(): Promise<void> {
    try {
      const [row] = await this.#stack.queryD1("SELECT COALESCE(MAX(rowid), 0) AS last FROM runtime_events");
      this.#afterRowid = Number(row?.last ?? 0);
    } catch {
      this.#method = "scan";
    }
  }

  /** One poll; returns the number of measured rows visible in D1 now. */
  async poll(): Promise<number> {
    const at = Date.now();
    this.#polls.push(at);
    const rows = await this.#stack.queryD1(this.#query());
    for (const raw of rows) this.#record(GroupSchema.parse(raw), at);
    return this.visible;
  }

  #query(): string {
    // The prefix and numbers are the benchmark's own, not input: inlined so the sqlite file reader needs no parameters.
    const request = `CAST(substr(id, ${this.#prefix.length + 2}) AS INTEGER) / ${this.#batch}`;
    const mine = `substr(id, 1, ${this.#prefix.length + 1}) = '${this.#prefix}-'`;
    return this.#method === "rowid"
      ? `SELECT ${request} AS r, COUNT(*) AS n, MAX(rowid) AS last FROM runtime_events WHERE rowid > ${this.#afterRowid} AND ${mine} GROUP BY r`
      : `SELECT ${request} AS r, COUNT(*) AS n, NULL AS last FROM runtime_events WHERE ${mine} GROUP BY r`;
  }

  #record(group: z.infer<typeof GroupSchema>, at: number): void {
    if (group.last !== null) this.#afterRowid = Math.max(this.#afterRowid, group.last);
    const before = this.#counts.get(group.r) ?? 0;
    // rowid polls return only new rows; scans return totals.
    const now = this.#method === "rowid" ? before + group.n : group.n;
    if (now <= before) return;
    this.#counts.set(group.r, now);
    this.#seen.push({ request: group.r, at, events: now - before });
    this.visible += now - before;
  }

  /** Latency percentiles, given when each request was answered 202 (`acceptedAt[r]`, epoch ms). */
  summary(acceptedAt: readonly (number | undefined)[]): LatencySummary {
    // A row can become visible before its request's 202 reaches the client: that is latency 0.
    const samples = this.#seen
      .flatMap(({ request, at, events }) => {
        const accepted = acceptedAt[request];
        return accepted === undefined ? [] : [{ ms: Math.max(0, at - accepted), events }];
      })
      .toSorted((a, b) => a.ms - b.ms);
    const total = samples.reduce((sum, sample) => sum + sample.events, 0);
    const quantile = (q: number) => {
      let left = Math.ceil(q * total);
      for (const sample of samples) {
        left -= sample.events;
        if (left <= 0) return sample.ms;
      }
      return samples.at(-1)?.ms ?? 0;
    };
    const gaps = this.#polls.slice(1).map((at, i) => at - (this.#polls[i] ?? at));
    return {
      events: total,
      p50: quantile(0.5),
      p95: quantile(0.95),
      p99: quantile(0.99),
      max: samples.at(-1)?.ms ?? 0,
      pollMeanMs: gaps.length > 0 ? gaps.reduce((a, b) => a + b, 0) / gaps.length : 0,
      pollMaxMs: Math.max(0, ...gaps),
      method: this.#method,
    };
  }
}
