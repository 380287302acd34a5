/**
 * The admin API client: base URL and admin token from flags or the environment (local defaults),
 * JSON in and out, every answer validated with zod, and the contract's error body turned into an
 * `ApiError` the entry point prints.
 */
import { z } from "zod";

/** Local defaults (`npm run dev`, .dev.vars.example). */
export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_ADMIN_TOKEN = "dev-admin-token";

/** The contract's error body, `{"error": {code, message, details?}}`. */
const ErrorBodySchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

/** A non-2xx answer from Shipyard. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** Shipyard could not be reached, or answered something that is not its API. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
}

/** Where Shipyard is and which admin token to send. */
export interface ApiOptions {
  url: string;
  token: string;
}

/** One request's query, body and headers. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  /** Raw body and extra headers (the signed webhook: the signature covers these exact bytes). */
  rawBody?: string;
  headers?: Record<string, string>;
  /** False for endpoints that take no admin token (the webhook). */
  auth?: boolean;
}

/** An answer before its body is interpreted (CSV exports, the down flow's 409). */
export interface RawAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/** The admin API over `fetch`. */
export class Api {
  readonly url: string;
  readonly #token: string;

  constructor(options: ApiOptions) {
    this.url = options.url.replace(/\/+$/, "");
    this.#token = options.token;
  }

  /** One request; resolves with any status (network failures throw `ConnectionError`). */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<RawAnswer> {
    const url = new URL(`${this.url}${path}`);
    for (const [name, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    if (options.auth !== false) headers.authorization = `Bearer ${this.#token}`;
    let body = options.rawBody;
    if (body === undefined && options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined) headers["content-type"] ??= "application/json";
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(60_000) });
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
      throw new ConnectionError(
        `could not reach Shipyard at ${this.url} (${cause}); is \`npm run dev\` running, or SHIPYARD_URL set?`,
        { cause: error },
      );
    }
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  /** A JSON request whose 2xx answer must match `schema`; a non-2xx answer throws `ApiError`. */
  async json<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    options: RequestOptions = {},
  ): Promise<z.infer<S>> {
    const answer = await this.raw(method, path, options);
    const body = parseJson(answer.text);
    if (answer.status < 200 || answer.status > 299) throw toApiError(answer.status, body, answer.text);
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      throw new ConnectionError(
        `${method} ${path} answered ${answer.status} with an unexpected body: ${z.prettifyError(parsed.error)}`,
      );
    }
    return parsed.data;
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
export function toApiError(status: number, body: unknown, text: string): ApiError {
  const parsed = ErrorBodySchema.safeParse(body);
  if (parsed.success)
    return new ApiError(status, parsed.data.error.code, parsed.data.error.message, parsed.data.error.details);
  return new ApiError(status, "unexpected_answer", `HTTP ${status}: ${text.slice(0, 500)}`);
}

/** The client for the flags and environment given. */
export function apiFrom(values: { url?: string; token?: string }, env: NodeJS.ProcessEnv = process.env): Api {
  return new Api({
    url: values.url ?? (env.SHIPYARD_URL || DEFAULT_URL),
    token: values.token ?? (env.SHIPYARD_ADMIN_TOKEN || DEFAULT_ADMIN_TOKEN),
  });
}
