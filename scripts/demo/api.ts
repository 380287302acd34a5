/**
 * Small helpers the feature phases share for talking to the stack: a request that waits out 429s
 * (the demo's own polling can touch the admin class's 300 requests a minute), answers checked for
 * their status and validated with zod, the contract's error code, and a poll-until helper.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { ApiError, type CallOutput, type InputArgs } from "../../lib/api-client.ts";
import type { OperationId } from "../../schemas/api.ts";
import { ADMIN_TOKEN, type HttpAnswer, type Stack } from "../lib/stack.ts";

export interface CallOptions {
  token?: string;
  body?: unknown;
  rawBody?: string;
}

const ErrorBodySchema = z.object({ error: z.looseObject({ code: z.string(), message: z.string() }) });

/** The contract's `error.code` of an answer, or null when the body is not an error body. */
export function errorCode(body: unknown): string | null {
  const parsed = ErrorBodySchema.safeParse(body);
  return parsed.success ? parsed.data.error.code : null;
}

/**
 * A short, single-line rendering of a body or message, safe in a Markdown table cell: no line
 * breaks, and no `|` (zod's reasons say `"post"|"user"`), which would end the cell.
 */
export function brief(body: unknown, max = 300): string {
  const text = (typeof body === "string" ? body : (JSON.stringify(body) ?? String(body)))
    .replace(/\s+/g, " ")
    .replaceAll("|", "/")
    .trim();
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/**
 * One request; a 429 is waited out (`Retry-After`) and retried, as any client of a rate-limited
 * API must, so a burst of polling slows the demo down instead of failing it.
 */
export async function call(
  stack: Stack,
  method: string,
  pathname: string,
  options: CallOptions = {},
): Promise<HttpAnswer> {
  for (let attempt = 1; ; attempt++) {
    const answer = await stack.request(method, pathname, options);
    if (answer.status !== 429 || attempt >= 6) return answer;
    const seconds = Number(answer.headers.get("retry-after"));
    await sleep(Math.min(60_000, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 1000));
  }
}

/**
 * One typed call (lib/api-client.ts) as on-call would make it, with the admin token; a 429 is
 * waited out and retried like `call`. A non-2xx answer throws the client's `ApiError`.
 */
export function apiCall<K extends OperationId>(stack: Stack, op: K, ...args: InputArgs<K>): Promise<CallOutput<K>> {
  return apiCallAs(stack, ADMIN_TOKEN, op, ...args);
}

/** `apiCall` with another credential (an ingest key). */
export async function apiCallAs<K extends OperationId>(
  stack: Stack,
  token: string,
  op: K,
  ...args: InputArgs<K>
): Promise<CallOutput<K>> {
  const api = stack.api(token);
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.call(op, ...args);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 429 || attempt >= 6) throw error;
      await sleep(Math.min(60_000, Math.max(1, error.retryAfterS ?? 1) * 1000));
    }
  }
}

/** A request that must answer `status`; its body parsed with `schema`. */
export async function expectJson<S extends z.ZodType>(
  stack: Stack,
  method: string,
  pathname: string,
  status: number,
  schema: S,
  options: CallOptions = {},
): Promise<z.output<S>> {
  const answer = await call(stack, method, pathname, options);
  if (answer.status !== status) {
    throw new Error(`${method} ${pathname} answered ${answer.status} (expected ${status}): ${brief(answer.body)}`);
  }
  const parsed = schema.safeParse(answer.body);
  if (!parsed.success) {
    throw new Error(
      `${method} ${pathname} answered an unexpected body (${parsed.error.message}): ${brief(answer.body)}`,
    );
  }
  return parsed.data;
}

/** `expectJson` with the admin token. */
export function adminJson<S extends z.ZodType>(
  stack: Stack,
  method: string,
  pathname: string,
  status: number,
  schema: S,
  body?: unknown,
): Promise<z.output<S>> {
  return expectJson(stack, method, pathname, status, schema, {
    token: ADMIN_TOKEN,
    ...(body === undefined ? {} : { body }),
  });
}

/**
 * Calls `probe` every `intervalMs` until it returns a value (not undefined), and returns it. On
 * timeout throws with `describe()`, which says how far it got. A reload of the worker loses local
 * queue messages in flight, so waiting on after one would only time out: fail at once instead.
 */
export async function waitFor<T>(
  stack: Stack,
  options: { timeoutMs: number; intervalMs: number; describe: () => string },
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (stack.reloads.length > 0) {
      throw stack.failure(
        "wrangler reloaded the worker during the run (a source file changed); re-run without editing",
      );
    }
    if (Date.now() > deadline) {
      throw stack.failure(`timed out after ${(options.timeoutMs / 1000).toFixed(0)} s: ${options.describe()}`);
    }
    await sleep(options.intervalMs);
  }
}

/** `HH:MM:SS.mmm` (UTC) of an epoch ms, for event timelines. */
export function clock(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}
