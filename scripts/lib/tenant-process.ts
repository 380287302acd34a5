/**
 * The tenant runtime's process (process B: `wrangler dev -c wrangler.tenants.toml`), started next to
 * the control plane and supervised (docs/tenant-isolation.md):
 *
 *  - **restart on exit**: when B exits (a crash wrangler could not recover, a kill), it is started
 *    again after a backoff (250 ms doubling to 8 s; back to 250 ms once B has answered for 60 s);
 *  - **watchdog**: B's own `GET /health` is probed every second; three probes in a row unanswered
 *    within 2 s each (a tenant spinning on B's one thread, `while (true) {}`) and the whole process
 *    group is SIGKILLed, which the restart above replaces. (2 s rather than 1 s, so slow answers
 *    on a loaded 2-core machine are not taken for a stall.)
 *
 * Every step is a structured log line (`{"level","code",...}`, codes `tenant_runtime_*`), written to
 * the stack's log. Both processes use the same dev registry directory (WRANGLER_REGISTRY_PATH), one
 * per stack, so stacks running side by side never reach each other's workers.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { setPriority } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { stripVTControlCharacters } from "node:util";
import { groupAlive, signalGroup } from "./process-group.ts";
import { ROOT, WRANGLER_BIN } from "./wrangler.ts";

/** The tenant runtime's Worker name (wrangler.tenants.toml), which is also its dev registry entry. */
export const TENANT_WORKER = "shipyard-tenants";
export const TENANT_CONFIG = "wrangler.tenants.toml";

export interface TenantProcessOptions {
  /** B's own persisted state (its tenant Durable Object storage): `<state dir>/tenants`. */
  stateDir: string;
  /** The dev registry directory the control plane's `wrangler dev` uses too. */
  registryPath: string;
  port: number;
  inspectorPort: number;
  /** Every line B prints and every supervision log line (already stripped of colours). */
  onLine: (text: string) => void;
  /** Probe period, probe timeout and unanswered probes before the kill (default 1000, 2000, 3). */
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  unansweredBeforeKill?: number;
  /** How long a fresh B may take to answer its first probe before it is killed (default 120 s). */
  bootTimeoutMs?: number;
}

/** One supervision event, as logged. */
export interface SupervisorEvent {
  at: number;
  code:
    | "tenant_runtime_started"
    | "tenant_runtime_ready"
    | "tenant_runtime_unresponsive"
    | "tenant_runtime_exited"
    | "tenant_runtime_crashed";
  fields: Record<string, unknown>;
}

/** wrangler's request log line of an answered probe. */
const PROBE_LOG = /\[wrangler:info\] GET \/health 200 /;
/** Niceness of process B (0 normal, 19 lowest). */
const TENANT_NICENESS = 10;
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 8_000;
const HEALTHY_RESET_MS = 60_000;

export class TenantProcess {
  readonly events: SupervisorEvent[] = [];
  readonly #options: Required<TenantProcessOptions>;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #stopping = false;
  #ready = false;
  #readyAt = 0;
  #backoffMs = BACKOFF_MIN_MS;
  #watchdog: NodeJS.Timeout | null = null;
  #readyWaiters: (() => void)[] = [];

  constructor(options: TenantProcessOptions) {
    this.#options = {
      probeIntervalMs: 1_000,
      probeTimeoutMs: 2_000,
      unansweredBeforeKill: 3,
      bootTimeoutMs: 120_000,
      ...options,
    };
  }

  get url(): string {
    return `http://127.0.0.1:${this.#options.port}`;
  }

  /** The wrangler process of the current B (its process group id), or null between restarts. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** How many times B was started again (after an exit or a watchdog kill). */
  get restarts(): number {
    return Math.max(0, this.events.filter((event) => event.code === "tenant_runtime_started").length - 1);
  }

  /** Starts B and resolves once it answers its probe; the watchdog then runs until `stop()`. */
  async start(): Promise<void> {
    this.#spawn();
    this.#watchdog = setInterval(() => void this.#probeTick(), this.#options.probeIntervalMs);
    await this.whenReady(this.#options.bootTimeoutMs);
  }

  /** Resolves once B answers its probe (now, or after the restart under way). */
  async whenReady(timeoutMs: number): Promise<void> {
    if (this.#ready) return;
    const ready = new Promise<void>((resolve) => this.#readyWaiters.push(resolve));
    const timeout = sleep(timeoutMs).then(() => {
      throw new Error(`the tenant runtime did not answer ${this.url}/health within ${timeoutMs} ms`);
    });
    await Promise.race([ready, timeout]);
  }

  #log(level: "info" | "warn" | "error", code: SupervisorEvent["code"], fields: Record<string, unknown>): void {
    this.events.push({ at: Date.now(), code, fields });
    this.#options.onLine(JSON.stringify({ level, code, ts: new Date().toISOString(), ...fields }));
  }

  #spawn(): void {
    // A SIGKILLed B leaves its registry entry behind, and a new B does not register over an entry
    // younger than 90 s that another process wrote: the control plane would keep dialling the dead
    // one. The directory is this stack's alone, so the entry can go.
    rmSync(path.join(this.#options.registryPath, TENANT_WORKER), { force: true });
    const { port, inspectorPort, stateDir, registryPath } = this.#options;
    const args = [
      WRANGLER_BIN,
      "dev",
      "-c",
      TENANT_CONFIG,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(inspectorPort),
      "--persist-to",
      stateDir,
      "--show-interactive-dev-session=false",
    ];
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        WRANGLER_REGISTRY_PATH: registryPath,
        NO_COLOR: "1",
        FORCE_COLOR: "0",
      },
    });
    this.#child = child;
    this.#ready = false;
    const spawnedAt = Date.now();
    const restart = this.events.some((event) => event.code === "tenant_runtime_started");
    this.#log("info", "tenant_runtime_started", { pid: child.pid, port, restart });
    // Tenant code yields the CPU to the control plane: B (wrangler, and the workerd it starts,
    // which inherits the niceness) runs at a lower priority, so a tenant spinning a core cannot
    // slow ingest down on a small machine.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, TENANT_NICENESS);
      } catch {
        // Not permitted here: B runs at normal priority.
      }
    }
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (raw) => {
        const text = stripVTControlCharacters(raw);
        if (text.includes("Workers runtime crashed unexpectedly")) {
          // wrangler restarts workerd itself (a heap blow-up aborts it); the probes see it come back.
          this.#log("error", "tenant_runtime_crashed", { pid: child.pid, message: text.trim() });
        }
        // wrangler logs every request, the watchdog's probe too: one line a second is noise.
        if (PROBE_LOG.test(text)) return;
        this.#options.onLine(`[tenants] ${text}`);
      });
    }
    this.#exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        if (this.#child === child) this.#child = null;
        this.#ready = false;
        resolve();
        if (this.#stopping) return;
        const uptimeMs = Date.now() - spawnedAt;
        if (this.#readyAt > 0 && Date.now() - this.#readyAt > HEALTHY_RESET_MS) this.#backoffMs = BACKOFF_MIN_MS;
        const delay = this.#backoffMs;
        this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
        this.#log("error", "tenant_runtime_exited", {
          pid: child.pid,
          exit: code ?? signal,
          uptime_ms: uptimeMs,
          restart_in_ms: delay,
        });
        setTimeout(() => {
          if (!this.#stopping) this.#spawn();
        }, delay).unref();
      });
    });
  }

  #unanswered = 0;
  #probing = false;

  async #probeTick(): Promise<void> {
    const child = this.#child;
    if (this.#probing || this.#stopping || child === null) return;
    this.#probing = true;
    try {
      const answered = await this.#probe();
      if (answered) {
        this.#unanswered = 0;
        if (!this.#ready) {
          this.#ready = true;
          this.#readyAt = Date.now();
          this.#log("info", "tenant_runtime_ready", { pid: child.pid });
          for (const resolve of this.#readyWaiters.splice(0)) resolve();
        }
        return;
      }
      if (!this.#ready) {
        // Still booting: only the boot timeout ends it.
        const started = this.events.findLast((event) => event.code === "tenant_runtime_started")?.at ?? Date.now();
        if (Date.now() - started > this.#options.bootTimeoutMs) this.#kill(child, "did not boot");
        return;
      }
      this.#unanswered += 1;
      if (this.#unanswered >= this.#options.unansweredBeforeKill) this.#kill(child, "probe unanswered");
    } finally {
      this.#probing = false;
    }
  }

  #kill(child: ChildProcess, reason: string): void {
    this.#log("error", "tenant_runtime_unresponsive", {
      pid: child.pid,
      reason,
      unanswered_probes: this.#unanswered,
      probe_timeout_ms: this.#options.probeTimeoutMs,
    });
    this.#unanswered = 0;
    this.#ready = false;
    if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
  }

  async #probe(): Promise<boolean> {
    try {
      const response = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(this.#options.probeTimeoutMs) });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  /** Resident memory of B's workerd processes (VmRSS, bytes), from /proc. */
  workerdRss(): number {
    const pgid = this.#child?.pid;
    if (pgid === undefined) return 0;
    let total = 0;
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        if (Number(fields[2]) !== pgid || comm !== "workerd") continue;
        const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${entry}/status`, "utf8"));
        total += Number(rss?.[1] ?? 0) * 1024;
      } catch {
        // Exited while we looked.
      }
    }
    return total;
  }

  /** Stops supervising and B with it: SIGTERM to the group, SIGKILL after 5 s. */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#watchdog !== null) clearInterval(this.#watchdog);
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    signalGroup(pid, "SIGTERM");
    const deadline = Date.now() + 5_000;
    while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
    if (groupAlive(pid)) signalGroup(pid, "SIGKILL");
    await Promise.race([this.#exited, sleep(2_000)]);
  }

  /** SIGKILLs B at once (synchronous; for `process.on("exit")`). */
  killNow(): void {
    this.#stopping = true;
    const pid = this.#child?.pid;
    if (pid !== undefined) signalGroup(pid, "SIGKILL");
  }
}
