/**
 * The one typed client of Shipyard's HTTP API, derived from the API table (schemas/api.ts): an
 * operation id picks the method, path, request, query and response schemas, so a contract change
 * fails `tsc` in every caller (CLI, scripts, tests) instead of at run time in the demo. Answers are
 * parsed with the response schema, which ignores fields it does not know (a newer server may add
 * some), and the contract's error body becomes an `ApiError`. Runs on Node and in workerd alike:
 * it needs only a `fetch`.
 */
import { z } from "zod";
import { API, type Api, type OperationId } from "../schemas/api.ts";
import { ErrorSchema } from "../schemas/http.schema.ts";

/** Names of the `:params` in a route pattern. */
type ParamNames<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never;

type ParamsInput<S extends { path: string }> = [ParamNames<S["path"]>] extends [never]
  ? { params?: never }
  : { params: Record<ParamNames<S["path"]>, string> };
type BodyInput<S> = S extends { request: infer R extends z.ZodType } ? { body: z.input<R> } : { body?: never };
type QueryInput<S> = S extends { query: infer Q extends z.ZodType }
  ? { query?: Partial<Record<keyof z.input<Q>, string | number | boolean | undefined>> }
  : { query?: never };

/** What one call of `op` takes: its path params, body and query, typed from the API table. */
export type CallInput<K extends OperationId> = ParamsInput<Api[K]> &
  BodyInput<Api[K]> &
  QueryInput<Api[K]> & {
    /** Extra headers (the signed webhook's). */
    headers?: Record<string, string>;
    /** The exact body bytes to send instead of `body` (a signature covers them). */
    rawBody?: string;
  };

/** What a successful call of `op` answers, typed from its response schema. */
export type CallOutput<K extends OperationId> = z.output<Api[K]["response"]["schema"]>;

/** `[input]` when the operation needs one, `[input?]` when everything in it is optional. */
export type InputArgs<K extends OperationId> =
  object extends CallInput<K> ? [input?: CallInput<K>] : [input: CallInput<K>];

/** A non-2xx answer from Shipyard. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly details: unknown;
  /** `Retry-After` of a 429 or 503, in seconds; null when the answer had none. */
  readonly retryAfterS: number | null;

  constructor(status: number, code: string, message: string, details?: unknown, retryAfterS: number | null = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfterS = retryAfterS;
  }
}

/** Shipyard could not be reached, or answered something that is not its API. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
}

export interface ApiClientOptions {
  /** e.g. `http://127.0.0.1:8787` */
  baseUrl: string;
  /** Sent as `Authorization: Bearer` to every operation that declares a credential. */
  token?: string;
  /** Defaults to the global `fetch`; tests pass the Worker's own (`exports.default.fetch`). */
  fetch?: (request: Request) => Promise<Response>;
  /** Per request; default 60 s. */
  timeoutMs?: number;
  /** Appended to the error when Shipyard cannot be reached (how to start or point at a stack). */
  unreachableHint?: string;
}

/** An answer before its body is interpreted (CSV exports, a 409 that lists what is at stake). */
export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #fetch: (request: Request) => Promise<Response>;
  readonly #timeoutMs: number;
  readonly #unreachableHint: string;

  constructor(options: ApiClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.#token = options.token;
    this.#fetch = options.fetch ?? ((request) => fetch(request));
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#unreachableHint = options.unreachableHint === undefined ? "" : `; ${options.unreachableHint}`;
  }

  /** The URL of one call of `op`. */
  url<K extends OperationId>(op: K, ...[input]: InputArgs<K>): URL {
    const spec = API[op];
    const params: Record<string, string> = input?.params ?? {};
    const path = spec.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] ?? ""));
    const url = new URL(`${this.baseUrl}${path}`);
    const query: Record<string, string | number | boolean | undefined> = input?.query ?? {};
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    return url;
  }

  /** One call; resolves with any status (a network failure throws `ConnectionError`). */
  async raw<K extends OperationId>(op: K, ...args: InputArgs<K>): Promise<RawAnswer> {
    const [input] = args;
    const spec = API[op];
    const headers = new Headers({ accept: "application/json", ...input?.headers });
    if (spec.auth !== "none" && this.#token !== undefined) headers.set("authorization", `Bearer ${this.#token}`);
    const body = input?.rawBody ?? (input?.body === undefined ? undefined : JSON.stringify(input.body));
    if (body !== undefined && !headers.has("content-type")) headers.set("content-type", "application/json");
    const request = new Request(this.url(op, ...args), {
      method: spec.method,
      headers,
      body,
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    let response: Response;
    try {
      response = await this.#fetch(request);
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new ConnectionError(`could not reach Shipyard at ${this.baseUrl} (${cause})${this.#unreachableHint}`, {
        cause: error,
      });
    }
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  /** One call whose 2xx answer is parsed with the operation's response schema; non-2xx throws `ApiError`. */
  async call<K extends OperationId>(op: K, ...args: InputArgs<K>): Promise<CallOutput<K>> {
    const answer = await this.raw(op, ...args);
    const body = parseJson(answer.text);
    if (answer.status < 200 || answer.status > 299) throw toApiError(answer.status, body, answer.text, answer.headers);
    const parsed = API[op].response.schema.safeParse(body);
    if (!parsed.success) {
      throw new ConnectionError(
        `${op} answered ${answer.status} with an unexpected body: ${z.prettifyError(parsed.error)}`,
      );
    }
    // The checker sees the union of every operation's output; `op` fixes which one it is.
    // oxlint-disable-next-line typescript/no-unsafe-type-assertion
    return parsed.data as CallOutput<K>;
  }
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null;
  } catch {
    return undefined;
  }
}

/** The contract's error body as an `ApiError`; anything else keeps its status and a text excerpt. */
export function toApiError(status: number, body: unknown, text: string, headers?: Headers): ApiError {
  const retryAfter = Number(headers?.get("retry-after") ?? Number.NaN);
  const retryAfterS = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter : null;
  const parsed = ErrorSchema.safeParse(body);
  if (parsed.success) {
    const { code, message, details } = parsed.data.error;
    return new ApiError(status, code, message, details, retryAfterS);
  }
  return new ApiError(status, "unexpected_answer", `HTTP ${status}: ${text.slice(0, 500)}`, undefined, retryAfterS);
}
