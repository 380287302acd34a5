import { z } from "zod";
import { StoredTextSchema } from "./text.schema.ts";

export const MAX_INCREMENTS_PER_REQUEST = 1000;
/** Deltas stay well inside the safe-integer range so sums of many of them stay exact. */
export const MAX_ABS_DELTA = 1_000_000_000;

export const CounterScopeSchema = z.enum(["post", "user"]);
export type CounterScope = z.infer<typeof CounterScopeSchema>;

export const CounterKeySchema = StoredTextSchema.min(1).max(128);

export const IncrementSchema = z.strictObject({
  id: StoredTextSchema.min(1).max(128).describe("producer-chosen id; each id is applied exactly once"),
  scope: CounterScopeSchema,
  key: CounterKeySchema,
  field: StoredTextSchema.min(1).max(64),
  delta: z.number().int().min(-MAX_ABS_DELTA).max(MAX_ABS_DELTA),
});
export type Increment = z.infer<typeof IncrementSchema>;

export const CountersRequestSchema = z.strictObject({
  increments: z.array(IncrementSchema).min(1).max(MAX_INCREMENTS_PER_REQUEST),
});

export const CounterParamsSchema = z.object({ scope: CounterScopeSchema, key: CounterKeySchema });

export const CounterValuesSchema = z.object({
  scope: CounterScopeSchema,
  key: z.string(),
  values: z.record(z.string(), z.number().int().nonnegative()),
});
export type CounterValues = z.infer<typeof CounterValuesSchema>;
