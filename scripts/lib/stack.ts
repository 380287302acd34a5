/**
 * A whole local Shipyard stack for one script run (demo, bench, load): fresh state directory, D1
 * migrations, `wrangler dev` on a free port in its own process group, the tenant runtime next to
 * it (process B, supervised: scripts/lib/tenant-process.ts), output of both captured line by line
 * (with wall-clock timestamps) to a log file, and a clean stop that leaves no workerd behind.
 *
 *   const stack = await startStack({ name: "demo" });
 *   try { ... stack.request("POST", "/v1/events", { token: INGEST_KEY, body }) ... }
 *   finally { await stack.stop(); }
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, type WriteStream } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { createInterface } from "node:readline";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { stripVTControlCharacters } from "node:util";
import { z } from "zod";
import { ApiClient, type CallOutput } from "../../lib/api-client.ts";
import { groupAlive, signalGroup } from "./process-group.ts";
import { TenantProcess } from "./tenant-process.ts";
import { ROOT, WRANGLER_BIN, applyLocalMigrations, ensureDevVars, spawnWrangler } from "./wrangler.ts";

/** The contract's default local credentials (.dev.vars.example). */
export const INGEST_KEY = "dev-ingest-key";
export const ADMIN_TOKEN = "dev-admin-token";

export interface StackOptions {
  /** Names the state directory (`.wrangler/<name>-state`) and the log (`.wrangler/<name>.log`). */
  name: string;
  /** `--var NAME:value` overrides for this run. */
  vars?: Record<string, string>;
  /** Extra environment for `wrangler dev` (e.g. `X_LOCAL_OBSERVABILITY: "false"`). */
  env?: Record<string, string>;
  /** How long to wait for `GET /v1/health` (default 120 s; a cold 2-core machine needs ~5 s). */
  bootTimeoutMs?: number;
  /** Status lines ("applying migrations", "ready on …"); default console.log. */
  say?: (line: string) => void;
}

export type Health = CallOutput<"getHealth">;
/** `GET /v1/admin/metrics` → `telemetry` (counters since the worker started). */
export type TelemetryMetrics = CallOutput<"getMetrics">["telemetry"];

/** `wrangler d1 execute --json` output. */
const D1ExecuteSchema = z.array(z.looseObject({ results: z.array(z.record(z.string(), z.unknown())) }));
const CountSchema = z.object({ n: z.coerce.number() });

/** A row from D1: column → value. */
export type D1Row = Record<string, unknown>;

export interface HttpAnswer {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: unknown;
  ms: number;
}

/** One line of wrangler's output, with the wall-clock time it arrived. */
export interface LogLine {
  at: number;
  text: string;
}

/** Running stacks, so an interrupted or crashing script still takes its workerd down with it. */
const live = new Set<Stack>();
let handlersInstalled = false;

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Last resort on any exit path: SIGKILL every process group still registered (synchronous).
  process.on("exit", () => {
    for (const stack of live) stack.killNow();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping ${live.size} local stack(s)…`);
      void Promise.allSettled([...live].map((stack) => stack.stop())).then(() => process.exit(130));
    });
  }
}

/** A free TCP port on 127.0.0.1 (asks the OS for one, then releases it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("could not get a free port"))));
    });
  });
}

/** Runs wrangler to completion capturing stdout (for `--json` commands); rejects on failure. */
export function captureWrangler(args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRANGLER_BIN, ...args], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
      timeout: timeoutMs,
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (code === 0) resolve(out);
      else
        reject(new Error(`wrangler ${args.slice(0, 2).join(" ")} exited with ${code ?? signal}: ${err.trim() || out}`));
    });
  });
}

export class Stack {
  readonly name: string;
  readonly stateDir: string;
  readonly logPath: string;
  readonly vars: Record<string, string>;
  port = 0;
  /** wrangler's DevTools inspector proxy for the worker (CPU profiles: see scripts/lib/profile.ts). */
  inspectorPort = 0;
  health: Health | null = null;
  /** Wall-clock time `wrangler dev` was spawned and the time health first answered. */
  spawnedAt = 0;
  readyAt = 0;
  /** Wrangler reloads the worker when a source file changes; in-flight local queue messages are lost then. */
  reloads: LogLine[] = [];
  /** `✘ [ERROR]` lines (build or config errors: wrangler then waits for a file change instead of exiting). */
  errors: LogLine[] = [];
  /** The tenant runtime (process B), where tenant code runs; null before `start`. */
  tenants: TenantProcess | null = null;

  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #log: WriteStream;
  #listeners = new Set<(line: LogLine) => void>();
  #tail: string[] = [];
  #stopped = false;
  #d1: DatabaseSync | null = null;

  constructor(options: StackOptions) {
    this.name = options.name;
    this.vars = { ...options.vars };
    const dir = path.join(ROOT, ".wrangler");
    this.stateDir = path.join(dir, `${options.name}-state`);
    this.logPath = path.join(dir, `${options.name}.log`);
    mkdirSync(dir, { recursive: true });
    this.#log = createWriteStream(this.logPath, { flags: "w" });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Called for every line wrangler prints (already stripped of colours). */
  onLine(listener: (line: LogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Writes a marker into the log, so script milestones line up with wrangler's own lines. */
  mark(text: string): void {
    this.#write({ at: Date.now(), text: `### ${text}` });
  }

  /** The last `lines` lines of wrangler's output. */
  logTail(lines = 40): string {
    return this.#tail.slice(-lines).join("\n");
  }

  #write(line: LogLine): void {
    const stamped = `${new Date(line.at).toISOString().slice(11, 23)} ${line.text}`;
    this.#log.write(`${stamped}\n`);
    this.#tail.push(stamped);
    if (this.#tail.length > 200) this.#tail.splice(0, this.#tail.length - 200);
    for (const listener of this.#listeners) listener(line);
  }

  async start(options: StackOptions): Promise<void> {
    const say = options.say ?? ((line: string) => console.log(line));
    installExitHandlers();
    ensureDevVars();
    rmSync(this.stateDir, { recursive: true, force: true });
    mkdirSync(this.stateDir, { recursive: true });
    say(`[${this.name}] fresh state in ${path.relative(ROOT, this.stateDir)}, applying D1 migrations`);
    this.mark("wrangler d1 migrations apply");
    const migrationLog = path.join(ROOT, ".wrangler", `${this.name}-migrations.log`);
    const fd = createWriteStream(migrationLog);
    await new Promise<void>((resolve) => fd.on("open", () => resolve()));
    try {
      await applyLocalMigrations(this.stateDir, { stdio: ["ignore", fd, fd] });
    } catch (error) {
      throw new Error(`D1 migrations failed (${String(error)}); see ${migrationLog}`, { cause: error });
    } finally {
      fd.end();
    }

    this.port = await freePort();
    this.inspectorPort = await freePort();
    // Both processes find each other in this stack's own dev registry (docs/tenant-isolation.md).
    const registryPath = path.join(this.stateDir, "dev-registry");
    this.tenants = new TenantProcess({
      stateDir: path.join(this.stateDir, "tenants"),
      registryPath,
      port: await freePort(),
      inspectorPort: await freePort(),
      onLine: (text) => this.#write({ at: Date.now(), text }),
    });
    const tenantsReady = this.tenants.start();
    // Handled below, after the control plane answers; an early failure must not go unhandled.
    tenantsReady.catch(() => undefined);
    const args = [
      "dev",
      "--ip",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--inspector-port",
      String(this.inspectorPort),
      "--persist-to",
      this.stateDir,
      "--test-scheduled",
      "--show-interactive-dev-session=false",
      ...Object.entries(this.vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ];
    this.mark(`wrangler ${args.join(" ")}`);
    this.spawnedAt = Date.now();
    // Own process group (detached): stop() signals the whole group, wrangler's workerd included.
    const child = spawnWrangler(args, {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: { NO_COLOR: "1", FORCE_COLOR: "0", WRANGLER_REGISTRY_PATH: registryPath, ...options.env },
    });
    this.#child = child;
    live.add(this);
    this.#exited = new Promise((resolve) => child.once("exit", () => resolve()));
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (raw) => {
        const line = { at: Date.now(), text: stripVTControlCharacters(raw) };
        if (line.text.includes("Reloading local server")) this.reloads.push(line);
        if (line.text.includes("[ERROR]")) this.errors.push(line);
        this.#write(line);
      });
    }

    const deadline = Date.now() + (options.bootTimeoutMs ?? 120_000);
    const exit: { code: string | null } = { code: null };
    child.once("exit", (code, signal) => (exit.code = String(code ?? signal)));
    for (;;) {
      if (exit.code !== null) throw this.failure(`wrangler dev exited with ${exit.code} before it answered`);
      const firstError = this.errors[0];
      // Give wrangler a moment to print the whole message, then fail fast rather than wait for a file change.
      if (firstError && Date.now() - firstError.at > 2_000) {
        throw this.failure(
          `wrangler dev reported an error and is waiting for a file change: ${firstError.text.trim()}`,
        );
      }
      if (Date.now() > deadline)
        throw this.failure(`GET /v1/health did not answer within ${options.bootTimeoutMs ?? 120_000} ms`);
      try {
        this.health = await new ApiClient({ baseUrl: this.url, timeoutMs: 2_000 }).call("getHealth");
        break;
      } catch {
        // Not listening yet.
      }
      await sleep(250);
    }
    try {
      await tenantsReady;
    } catch (error) {
      throw this.failure(`the tenant runtime did not start: ${String(error)}`);
    }
    this.readyAt = Date.now();
    this.mark("health answered");
    say(
      `[${this.name}] ready on ${this.url} in ${((this.readyAt - this.spawnedAt) / 1000).toFixed(1)} s (log: ${path.relative(ROOT, this.logPath)})`,
    );
  }

  /** An Error that points at the log, with its tail. */
  failure(message: string): Error {
    return new Error(
      `[${this.name}] ${message}\n--- last lines of ${this.logPath} ---\n${this.logTail(25)}\n--- full log: ${this.logPath}`,
    );
  }

  /** One JSON request; never throws on HTTP status (only on network failure). */
  async request(
    method: string,
    pathname: string,
    options: { token?: string; body?: unknown; rawBody?: string; timeoutMs?: number } = {},
  ): Promise<HttpAnswer> {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body: string | undefined = options.rawBody;
    if (body === undefined && options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? 60_000;
    let response: Response;
    try {
      response = await fetch(`${this.url}${pathname}`, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      const reason =
        error instanceof Error && error.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : String(error);
      throw new Error(`${method} ${pathname} failed: ${reason} (wrangler log: ${this.logPath})`, { cause: error });
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? (JSON.parse(text) as unknown) : null;
    } catch {
      // Keep the text.
    }
    return { status: response.status, headers: response.headers, body: parsed, ms: performance.now() - started };
  }

  /**
   * The typed API client (lib/api-client.ts) for this stack, sending `token` (default: the admin
   * token) to operations that need a credential. `request` stays for raw traffic: load, and
   * requests that are wrong on purpose.
   */
  api(token: string = ADMIN_TOKEN): ApiClient {
    return new ApiClient({ baseUrl: this.url, token, unreachableHint: `wrangler log: ${this.logPath}` });
  }

  /** `GET /v1/admin/metrics` → telemetry counters. */
  async metrics(): Promise<TelemetryMetrics> {
    return (await this.api().call("getMetrics")).telemetry;
  }

  /**
   * Runs a read-only query on the local D1 database. Reads the SQLite file `wrangler dev` writes
   * directly (WAL mode, so a reader never blocks the worker): ~1 ms instead of ~1 s for
   * `wrangler d1 execute`, which matters when polling on 2 cores. Falls back to `wrangler d1
   * execute --local` when the file cannot be found (a different miniflare layout).
   */
  async queryD1(sql: string): Promise<D1Row[]> {
    const db = this.#openD1();
    if (db) {
      for (let attempt = 1; ; attempt++) {
        try {
          return db.prepare(sql).all();
        } catch (error) {
          // SQLITE_BUSY while the writer recovers or checkpoints: brief, retry.
          if (attempt >= 20 || !String(error).includes("locked")) throw error;
          await sleep(20);
        }
      }
    }
    return this.queryD1ViaWrangler(sql);
  }

  /** The same query through `wrangler d1 execute --local` (the supported path; ~1-2 s). */
  async queryD1ViaWrangler(sql: string): Promise<D1Row[]> {
    const out = await captureWrangler([
      "d1",
      "execute",
      "DB",
      "--local",
      "--persist-to",
      this.stateDir,
      "--command",
      sql,
      "--json",
    ]);
    const parsed = D1ExecuteSchema.parse(JSON.parse(out.slice(out.indexOf("["))));
    return parsed[0]?.results ?? [];
  }

  /** `SELECT COUNT(*)` helper. */
  async countD1(sql = "SELECT COUNT(*) AS n FROM runtime_events", via: "fast" | "wrangler" = "fast"): Promise<number> {
    const rows = via === "wrangler" ? await this.queryD1ViaWrangler(sql) : await this.queryD1(sql);
    return CountSchema.parse(rows[0] ?? { n: 0 }).n;
  }

  /** How D1 is read: "sqlite" (the file, directly) or "wrangler" (d1 execute). */
  get d1Access(): "sqlite" | "wrangler" {
    return this.#openD1() ? "sqlite" : "wrangler";
  }

  #openD1(): DatabaseSync | null {
    if (this.#d1) return this.#d1;
    const dir = path.join(this.stateDir, "v3", "d1", "miniflare-D1DatabaseObject");
    if (!existsSync(dir)) return null;
    for (const file of readdirSync(dir)) {
      if (!file.endsWith(".sqlite") || file === "metadata.sqlite") continue;
      const db = new DatabaseSync(path.join(dir, file), { readOnly: true });
      const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'runtime_events'").get();
      if (table) {
        this.#d1 = db;
        return db;
      }
      db.close();
    }
    return null;
  }

  /**
   * CPU time used so far by every thread of the stack's processes (wrangler, workerd, esbuild),
   * from /proc, in seconds. Deltas of two readings show how many cores the stack kept busy and
   * whether one thread (workerd runs every isolate on one thread) was the limit.
   */
  cpu(): CpuReading {
    const reading: CpuReading = { at: Date.now(), threads: new Map() };
    for (const { pid, comm } of this.#processes()) {
      let tasks: string[] = [];
      try {
        tasks = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const tid of tasks) {
        const thread = readStat(`/proc/${pid}/task/${tid}/stat`);
        if (thread) reading.threads.set(`${comm}/${thread.comm}#${tid}`, thread.seconds);
      }
    }
    return reading;
  }

  /**
   * Resident memory of the stack's processes now (VmRSS), and the workerd processes' high-water
   * mark since they started (VmHWM), from /proc/<pid>/status, in bytes.
   */
  memory(): MemoryReading {
    const reading: MemoryReading = { workerd: 0, stack: 0, workerdHighWater: 0 };
    for (const { pid, comm } of this.#processes()) {
      let status: string;
      try {
        status = readFileSync(`/proc/${pid}/status`, "utf8");
      } catch {
        continue;
      }
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0) * 1024;
      reading.stack += kib("VmRSS");
      if (comm === "workerd") {
        reading.workerd += kib("VmRSS");
        reading.workerdHighWater += kib("VmHWM");
      }
    }
    return reading;
  }

  /** The processes of the stack's process group (wrangler, workerd, esbuild), from /proc. */
  #processes(): { pid: string; comm: string }[] {
    const pgid = this.#child?.pid;
    if (pgid === undefined) return [];
    const found: { pid: string; comm: string }[] = [];
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = readStat(`/proc/${entry}/stat`);
      if (stat && stat.pgrp === pgid) found.push({ pid: entry, comm: stat.comm });
    }
    return found;
  }

  /** SIGKILLs the process group at once (synchronous; for `process.on("exit")`). */
  killNow(): void {
    this.tenants?.killNow();
    const pid = this.#child?.pid;
    if (pid !== undefined && !this.#stopped) signalGroup(pid, "SIGKILL");
  }

  /**
   * Stops wrangler and everything it started: SIGTERM to the process group, SIGKILL after 10 s,
   * then checks that no process of the group (workerd in particular) is left.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#d1?.close();
    this.#d1 = null;
    await this.tenants?.stop();
    const pid = this.#child?.pid;
    if (pid !== undefined) {
      signalGroup(pid, "SIGTERM");
      const deadline = Date.now() + 10_000;
      while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
      if (groupAlive(pid)) {
        this.mark("still running 10 s after SIGTERM: SIGKILL");
        signalGroup(pid, "SIGKILL");
        const killDeadline = Date.now() + 5_000;
        while (groupAlive(pid) && Date.now() < killDeadline) await sleep(100);
      }
      await Promise.race([this.#exited, sleep(2_000)]);
      live.delete(this);
      if (groupAlive(pid))
        throw new Error(`[${this.name}] processes of group ${pid} survived SIGKILL (see ps -g ${pid})`);
      const strays = strayWorkerd(this.port);
      if (strays.length > 0)
        throw new Error(`[${this.name}] workerd still serving port ${this.port}: pids ${strays.join(", ")}`);
    }
    this.mark("stopped");
    await new Promise<void>((resolve) => this.#log.end(() => resolve()));
  }
}

/** Resident memory in bytes: see `Stack.memory()`. */
export interface MemoryReading {
  /** VmRSS of the workerd processes (the runtime: Worker, Durable Objects, D1, queues). */
  workerd: number;
  /** VmRSS of every process of the stack (wrangler's Node, workerd, esbuild). */
  stack: number;
  /** VmHWM of the workerd processes: the most they held at any moment since they started. */
  workerdHighWater: number;
}

/** The larger of each figure of two readings (a running peak). */
export function maxMemory(a: MemoryReading, b: MemoryReading): MemoryReading {
  return {
    workerd: Math.max(a.workerd, b.workerd),
    stack: Math.max(a.stack, b.stack),
    workerdHighWater: Math.max(a.workerdHighWater, b.workerdHighWater),
  };
}

export interface CpuReading {
  at: number;
  /** "process/thread#tid" → CPU seconds (user + system). */
  threads: Map<string, number>;
}

/** Clock ticks per second for /proc times (USER_HZ; 100 on Linux x86 and arm64). */
const CLOCK_TICKS = 100;

function readStat(file: string): { comm: string; pgrp: number; seconds: number } | null {
  try {
    const text = readFileSync(file, "utf8");
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ")".
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    // fields[0] is state (field 3); utime and stime are fields 14 and 15.
    return { comm, pgrp: Number(fields[2]), seconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
  } catch {
    return null;
  }
}

/** Cores used between two readings: in total and by the busiest thread. */
export function cpuBetween(
  before: CpuReading,
  after: CpuReading,
): { cores: number; busiest: string; busiestCores: number } {
  const wall = Math.max(0.001, (after.at - before.at) / 1000);
  let total = 0;
  let busiest = "";
  let busiestSeconds = 0;
  for (const [thread, seconds] of after.threads) {
    const used = seconds - (before.threads.get(thread) ?? 0);
    total += used;
    if (used > busiestSeconds) {
      busiestSeconds = used;
      busiest = thread;
    }
  }
  return { cores: total / wall, busiest, busiestCores: busiestSeconds / wall };
}

/** Whole-machine CPU counters (/proc/stat, /proc/pressure/cpu), to tell whether a run had the machine to itself. */
export interface MachineReading {
  at: number;
  /** Busy CPU seconds of all cores (user, nice, system, irq, softirq, steal). */
  busySeconds: number;
  /** Microseconds in which some runnable task waited for a CPU (PSI), or null without PSI. */
  pressureUs: number | null;
  /** CPU seconds used by this (client) process. */
  selfSeconds: number;
}

export function machine(): MachineReading {
  let busySeconds = 0;
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
    busySeconds =
      ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLOCK_TICKS;
  } catch {
    // Not Linux.
  }
  let pressureUs: number | null = null;
  try {
    const some = /some .*total=(\d+)/.exec(readFileSync("/proc/pressure/cpu", "utf8"));
    pressureUs = some ? Number(some[1]) : null;
  } catch {
    // No PSI.
  }
  const usage = process.cpuUsage();
  return { at: Date.now(), busySeconds, pressureUs, selfSeconds: (usage.user + usage.system) / 1e6 };
}

/**
 * What else ran on the machine between two readings: cores used by processes other than the stack
 * and this script, and the share of time some task waited for a CPU.
 */
export function machineBetween(
  before: MachineReading,
  after: MachineReading,
  stackCores: number,
): { otherCores: number; clientCores: number; cpuPressure: number | null } {
  const wall = Math.max(0.001, (after.at - before.at) / 1000);
  const clientCores = (after.selfSeconds - before.selfSeconds) / wall;
  const allCores = (after.busySeconds - before.busySeconds) / wall;
  return {
    otherCores: Math.max(0, allCores - stackCores - clientCores),
    clientCores,
    cpuPressure:
      before.pressureUs === null || after.pressureUs === null
        ? null
        : (after.pressureUs - before.pressureUs) / 1e6 / wall,
  };
}

/** workerd processes whose command line serves `port` (ours; other agents' workerd are left alone). */
export function strayWorkerd(port: number): number[] {
  const strays: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ");
      if (cmdline.includes("workerd") && cmdline.includes(`127.0.0.1:${port} `)) strays.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return strays;
}

/** Boots a fresh stack; see the module comment. */
export async function startStack(options: StackOptions): Promise<Stack> {
  const stack = new Stack(options);
  try {
    await stack.start(options);
  } catch (error) {
    await stack.stop().catch(() => undefined);
    throw error;
  }
  return stack;
}
