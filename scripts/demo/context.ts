/**
 * What the demo's phases share: the report, the progress line, the running stack, wall-clock
 * milestones, and one slot per feature for its own state. A feature adds a module under
 * scripts/demo/ exporting its phases (see telemetry.ts) and a slot here; scripts/demo.ts lists it.
 */
import type { Progress, Report } from "../lib/report.ts";
import type { Stack } from "../lib/stack.ts";
import type { CountersState } from "./counters.ts";
import type { DeadLettersState } from "./deadletters.ts";
import type { DeployState } from "./deploy.ts";
import type { EnforcementState } from "./enforcement.ts";
import type { TelemetryState } from "./telemetry.ts";

export interface DemoContext {
  report: Report;
  progress: Progress;
  stack?: Stack;
  /** Wall-clock milestones (epoch ms) by name. */
  at: Record<string, number>;
  telemetry?: TelemetryState;
  counters?: CountersState;
  deploy?: DeployState;
  enforcement?: EnforcementState;
  deadLetters?: DeadLettersState;
}

/** A value an earlier phase should have produced. */
export function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is missing (an earlier phase did not run)`);
  return value;
}

/** Report sections shared by several phases. */
export const SECTION = {
  stack: "Stack",
  times: "Elapsed",
} as const;
