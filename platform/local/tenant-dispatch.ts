import { z } from "zod";
import { describeError, log } from "../../lib/log.ts";
import { type Result, err, ok } from "../../lib/result.ts";
import type { UploadRequest } from "../script-host.ts";
import type { GatewayProps } from "./local-runtime.ts";
import type { StartupCheck, StartupFailure } from "./startup-check.ts";
import { RUNTIME_ANSWER_HEADER, RUNTIME_TARGET_HEADER } from "./tenant-runtime.ts";

/**
 * The control plane's side of the tenant runtime (platform/local/tenant-runtime.ts): every call
 * into it has a deadline, and a runtime that is stalled (a tenant looping forever holds the whole
 * of process B's thread), restarting or gone ends that one call with a reason the caller turns
 * into a 5xx for that tenant only. Nothing else of the control plane (health, ingest, queues)
 * waits on the runtime.
 */

/** How long a tenant request may take to start answering (headers; a streamed body or a WebSocket may outlive it). */
export const TENANT_DEADLINE_MS = 10_000;
/** How long a deploy's startup check may take (it only evaluates the version's modules). */
export const STARTUP_DEADLINE_MS = 10_000;
/** What callers tell clients to wait before retrying: about one watchdog restart of process B. */
export const RUNTIME_RETRY_AFTER_S = 5;

/** Why the runtime gave no answer: `timeout` (past the deadline), `unavailable` (not running, or it stopped mid-call). */
export interface RuntimeFailure {
  reason: "timeout" | "unavailable";
  message: string;
}

/** What dispatch needs of the `TENANT_RUNTIME` binding (tests hand in runtimes that stall or fail). */
export interface RuntimeFetcher {
  fetch(request: Request): Promise<Response>;
}

/** What the startup check needs of it: the entrypoint's RPC method, whose answer is checked here. */
export interface RuntimeChecker {
  startupCheck(request: UploadRequest, classes: string[]): PromiseLike<unknown>;
}

const StartupResultSchema = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    value: z.object({ checkedBy: z.enum(["local_runtime", "cloudflare_upload"]), ms: z.number() }),
  }),
  z.object({ ok: z.literal(false), error: z.object({ message: z.string() }) }),
]);

class DeadlineExceeded extends Error {}

/** `promise`, or a {@link DeadlineExceeded} after `ms` (the promise itself keeps running; a stalled runtime is restarted by its watchdog). */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
}

function failure(error: unknown, what: string, ms: number): RuntimeFailure {
  if (error instanceof DeadlineExceeded) {
    return { reason: "timeout", message: `the tenant runtime did not answer ${what} within ${ms} ms` };
  }
  return { reason: "unavailable", message: `the tenant runtime is unavailable (${describeError(error)})` };
}

/**
 * Runs `request` on the tenant runtime as version `current`. The headers the runtime reads are set
 * here and a client's copies of them dropped, so a client cannot choose the version that runs.
 */
export async function dispatchToRuntime(
  runtime: RuntimeFetcher,
  current: GatewayProps,
  request: Request,
  deadlineMs = TENANT_DEADLINE_MS,
): Promise<Result<Response, RuntimeFailure>> {
  const headers = new Headers(request.headers);
  headers.delete(RUNTIME_ANSWER_HEADER);
  const { script, versionId, versionKey, generation } = current;
  headers.set(RUNTIME_TARGET_HEADER, JSON.stringify({ script, versionId, versionKey, generation }));
  const started = performance.now();
  let response: Response;
  try {
    response = await withDeadline(runtime.fetch(new Request(request, { headers })), deadlineMs);
  } catch (error) {
    const why = failure(error, "the request", deadlineMs);
    log.warn(`tenant_runtime_${why.reason}`, { project: script, version_id: versionId, error: why.message });
    return err(why);
  }
  if (!response.headers.has(RUNTIME_ANSWER_HEADER)) {
    // Not the runtime's answer: the dev registry's own 503 while process B is down or restarting.
    const text = await response.text().catch(() => "");
    log.warn("tenant_runtime_unavailable", { project: script, status: response.status, error: text.slice(0, 200) });
    return err({ reason: "unavailable", message: `the tenant runtime is not running (${text.slice(0, 200)})` });
  }
  const out = new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
    webSocket: response.webSocket,
  });
  // In the runtime vs. the whole dispatch: their difference is the hop between the two processes.
  const inRuntime = Number(response.headers.get(RUNTIME_ANSWER_HEADER));
  out.headers.delete(RUNTIME_ANSWER_HEADER);
  out.headers.append(
    "server-timing",
    `shipyard-tenant-runtime;dur=${inRuntime.toFixed(1)}, shipyard-dispatch;dur=${(performance.now() - started).toFixed(1)}`,
  );
  return ok(out);
}

/** The deploy's startup check, run in the tenant runtime with a deadline (a version whose top level loops never starts). */
export async function startupCheckInRuntime(
  runtime: RuntimeChecker,
  request: UploadRequest,
  classes: readonly string[],
  deadlineMs = STARTUP_DEADLINE_MS,
): Promise<Result<StartupCheck, StartupFailure | RuntimeFailure>> {
  try {
    const answer = await withDeadline(Promise.resolve(runtime.startupCheck(request, [...classes])), deadlineMs);
    const checked: Result<StartupCheck, StartupFailure> = StartupResultSchema.parse(answer);
    return checked;
  } catch (error) {
    const why = failure(error, "the startup check", deadlineMs);
    log.warn(`tenant_runtime_${why.reason}`, {
      project: request.scriptName,
      step: "startup_check",
      error: why.message,
    });
    return err(why);
  }
}
