/**
 * CPU profiles of the Worker isolate (fetch handlers, queue consumer and the shard Durable Objects
 * all run there) through wrangler's DevTools inspector proxy: where the time goes, as evidence.
 * Uses the Chrome DevTools Protocol over Node's built-in WebSocket.
 */
import { writeFileSync } from "node:fs";
import { z } from "zod";

const CallFrameSchema = z.looseObject({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
type CallFrame = z.infer<typeof CallFrameSchema>;

/** The DevTools protocol's `Profiler.Profile`. */
const CpuProfileSchema = z.looseObject({
  nodes: z.array(
    z.looseObject({ id: z.number(), callFrame: CallFrameSchema, children: z.array(z.number()).optional() }),
  ),
  startTime: z.number(),
  endTime: z.number(),
  samples: z.array(z.number()),
  timeDeltas: z.array(z.number()),
});
export type CpuProfile = z.infer<typeof CpuProfileSchema>;

const MessageSchema = z.looseObject({
  id: z.number().optional(),
  result: z.unknown().optional(),
  error: z.looseObject({ message: z.string() }).optional(),
});
const TargetsSchema = z.array(z.looseObject({ webSocketDebuggerUrl: z.string().optional() }));
const StopResultSchema = z.looseObject({ profile: CpuProfileSchema });

/** An open DevTools session on the worker isolate. */
export class Profiler {
  readonly #socket: WebSocket;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.addEventListener("message", (event) => {
      const message = MessageSchema.parse(JSON.parse(String(event.data)));
      if (message.id === undefined) return;
      const waiter = this.#pending.get(message.id);
      if (!waiter) return;
      this.#pending.delete(message.id);
      if (message.error) waiter.reject(new Error(message.error.message));
      else waiter.resolve(message.result);
    });
  }

  /** Connects to the first worker target behind wrangler's inspector proxy on `port`. */
  static async connect(port: number): Promise<Profiler> {
    const targets = TargetsSchema.parse(await (await fetch(`http://127.0.0.1:${port}/json`)).json());
    const url = targets.find((target) => target.webSocketDebuggerUrl)?.webSocketDebuggerUrl;
    if (!url) throw new Error(`no inspector target on port ${port}`);
    // The inspector proxy only accepts local origins; undici's WebSocket takes extra headers.
    const socket = new WebSocket(url, { headers: { origin: "http://127.0.0.1" } });
    await new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => resolve(), { once: true });
      socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    const profiler = new Profiler(socket);
    await profiler.send("Profiler.enable");
    // 1 ms sampling: enough resolution, little overhead on the measured thread.
    await profiler.send("Profiler.setSamplingInterval", { interval: 1000 });
    return profiler;
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(): Promise<void> {
    await this.send("Profiler.start");
  }

  async stop(): Promise<CpuProfile> {
    return StopResultSchema.parse(await this.send("Profiler.stop")).profile;
  }

  close(): void {
    this.#socket.close();
  }
}

export interface ProfileSummary {
  /** Wall time covered by the profile. */
  totalMs: number;
  /** Time the isolate was running JavaScript or native code on its behalf (everything but idle). */
  busyMs: number;
  idleMs: number;
  gcMs: number;
  /** Self time by function, largest first. */
  top: { name: string; selfMs: number; share: number }[];
  /** Inclusive time of selected functions (by name), e.g. "ingest", "consumeTelemetry". */
  inclusive: Record<string, number>;
}

function label(frame: CallFrame): string {
  const file = frame.url.split("/").at(-1) ?? frame.url;
  const name = frame.functionName || "(anonymous)";
  return file ? `${name} (${file}:${frame.lineNumber + 1})` : name;
}

/** Self and inclusive times from a CPU profile. */
export function summarize(profile: CpuProfile, inclusiveNames: readonly string[] = [], topN = 20): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((nodeId, index) => {
    selfUs.set(nodeId, (selfUs.get(nodeId) ?? 0) + (profile.timeDeltas[index] ?? 0));
  });
  let totalUs = 0;
  let idleUs = 0;
  let gcUs = 0;
  const selfByLabel = new Map<string, number>();
  const inclusiveUs = new Map<string, number>();
  for (const [nodeId, us] of selfUs) {
    const node = byId.get(nodeId);
    if (!node) continue;
    totalUs += us;
    const name = node.callFrame.functionName;
    if (name === "(idle)") idleUs += us;
    if (name === "(garbage collector)") gcUs += us;
    const key = label(node.callFrame);
    selfByLabel.set(key, (selfByLabel.get(key) ?? 0) + us);
    // Inclusive: credit each named ancestor once per sample stack.
    const seen = new Set<string>();
    for (let id: number | undefined = nodeId; id !== undefined; id = parent.get(id)) {
      const ancestor = byId.get(id)?.callFrame.functionName;
      if (ancestor && inclusiveNames.includes(ancestor) && !seen.has(ancestor)) {
        seen.add(ancestor);
        inclusiveUs.set(ancestor, (inclusiveUs.get(ancestor) ?? 0) + us);
      }
    }
  }
  const busyUs = totalUs - idleUs;
  const top = [...selfByLabel]
    .filter(([name]) => !name.startsWith("(idle)"))
    .toSorted((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([name, us]) => ({ name, selfMs: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return {
    totalMs: totalUs / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    gcMs: gcUs / 1000,
    top,
    inclusive: Object.fromEntries(inclusiveNames.map((name) => [name, (inclusiveUs.get(name) ?? 0) / 1000])),
  };
}

export function writeProfile(file: string, profile: CpuProfile): void {
  writeFileSync(file, JSON.stringify(profile));
}
