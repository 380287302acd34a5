/**
 * What every part of `npm run bench` shares: the run's options, the stack settings that take the
 * rate limiter and wrangler's local tracing out of the measurement, and the machine's description.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { z } from "zod";
import type { Progress } from "../lib/report.ts";
import { type CpuReading, type MachineReading, type Stack, cpuBetween, machineBetween } from "../lib/stack.ts";
import { ROOT } from "../lib/wrangler.ts";

export interface BenchOptions {
  /** Concurrent HTTP clients per arm. */
  clients: number;
  /** Longest a telemetry arm may take to make its events visible. */
  timeoutMs: number;
  /** Keep wrangler's local trace collection on (see `stackEnv`). */
  localObservability: boolean;
  /** CPU-profile the worker isolate over each telemetry arm's measured window. */
  profile: boolean;
  /** Extra `wrangler dev --var NAME:value` for every stack; they win over an arm's own (SHARD_COUNT), not over its mode. */
  extraVars: Record<string, string>;
  progress: Progress;
  /** Names this run's files in bench/out/. */
  stamp: string;
}

/**
 * Rate limits lifted for a run: the benchmark measures the pipeline, not the limiter (1,000,000
 * per minute is the most `RATE_LIMITS` accepts; lib/config.ts).
 */
export const UNLIMITED = JSON.stringify({
  ingest: { limit: 1_000_000, window_s: 60 },
  webhook: { limit: 60, window_s: 60 },
  admin: { limit: 100_000, window_s: 60 },
});

/**
 * wrangler ≥ 4.15x collects a local trace of every invocation and every SQL statement and stores it
 * in a SQLite trace store on the same workerd thread (X_LOCAL_OBSERVABILITY, default on). It halves
 * local throughput and has no production counterpart, so the benchmark turns it off unless asked.
 */
export function stackEnv(options: BenchOptions): Record<string, string> {
  return options.localObservability ? {} : { X_LOCAL_OBSERVABILITY: "false" };
}

/** CPU of the stack and of the rest of the machine over one measured window. */
export interface CpuSummary {
  /** Cores the stack's processes kept busy, and its busiest thread (workerd runs every isolate on one). */
  cores: number;
  busiest: string;
  busiestCores: number;
  /** Other processes, this client, and the share of time some task waited for a CPU (PSI). */
  otherCores: number;
  clientCores: number;
  cpuPressure: number | null;
}

/** CPU between two pairs of readings (stack and machine) taken at the same moments. */
export function cpuSummary(
  stackBefore: CpuReading,
  stackAfter: CpuReading,
  machineBefore: MachineReading,
  machineAfter: MachineReading,
): CpuSummary {
  const stack = cpuBetween(stackBefore, stackAfter);
  return { ...stack, ...machineBetween(machineBefore, machineAfter, stack.cores) };
}

/** Was the machine busy with something else (pessimistic numbers)? */
export function contended(cpu: CpuSummary | null): boolean {
  return cpu !== null && (cpu.otherCores > 0.25 || (cpu.cpuPressure ?? 0) > 0.15);
}

/** Checks that the stack runs the mode an arm asked for (a typo in a var must not measure the default). */
export function expectMode(stack: Stack, key: "runtime_events" | "counters", mode: string): void {
  const actual = stack.health?.modes[key];
  if (actual !== mode) throw new Error(`stack reports ${key} mode ${actual}, expected ${mode}`);
}

const PackageSchema = z.looseObject({ version: z.string() });

/** Installed version of a package, or "?". */
function installedVersion(pkg: string): string {
  try {
    return PackageSchema.parse(JSON.parse(readFileSync(path.join(ROOT, "node_modules", pkg, "package.json"), "utf8")))
      .version;
  } catch {
    return "?";
  }
}

export interface Versions {
  node: string;
  wrangler: string;
  workerd: string;
  cores: number;
  cpu: string;
  memory: string;
  os: string;
  commit: string;
}

export function versions(): Versions {
  let commit = "?";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: ROOT,
      encoding: "utf8",
    }).trim();
    if (dirty) commit += " (uncommitted changes)";
  } catch {
    // Not a git checkout.
  }
  const cpus = os.cpus();
  return {
    node: process.version,
    wrangler: installedVersion("wrangler"),
    workerd: installedVersion("workerd"),
    cores: cpus.length,
    cpu: cpus[0]?.model.trim() ?? "?",
    memory: `${Math.round(os.totalmem() / 1024 ** 3)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    commit,
  };
}
