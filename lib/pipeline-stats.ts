import { type D1Stats, newD1Stats } from "./d1.ts";

/**
 * Counters of the consumer side of this isolate, per pipeline (the shards keep their own): what
 * the benchmark and the demo divide by events to get "per 1,000 events" figures. In memory on
 * purpose: counting into D1 would add the very round trips being measured.
 */
export interface PipelineStats {
  d1: D1Stats;
  shardRpcs: number;
}

export const pipelineStats: { telemetry: PipelineStats; counters: PipelineStats } = {
  telemetry: { d1: newD1Stats(), shardRpcs: 0 },
  counters: { d1: newD1Stats(), shardRpcs: 0 },
};
