import { ZodError } from "zod";
import { describeError, log } from "../lib/log.ts";
import { QueueSendError } from "../lib/queue.ts";

/**
 * The contract's error model (../shared/CONTRACT.md "Errors"): every non-2xx answer is
 * `{"error": {"code", "message", "details"?}}`. Handlers throw these; the router's `catch`
 * is the one place that turns them (and anything unexpected) into responses.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = "HttpError";
  }
}

export class BadRequest extends HttpError {
  constructor(code: string, message: string, details?: unknown) {
    super(400, code, message, details);
  }
}

export class Unauthorized extends HttpError {
  constructor(message = "missing or invalid credentials") {
    super(401, "unauthorized", message, undefined, { "WWW-Authenticate": 'Bearer realm="shipyard"' });
  }
}

export class Forbidden extends HttpError {
  constructor(message: string) {
    super(403, "forbidden", message);
  }
}

export class NotFound extends HttpError {
  constructor(message = "no such resource") {
    super(404, "not_found", message);
  }
}

export class MethodNotAllowed extends HttpError {
  constructor(method: string, allowed: readonly string[]) {
    super(
      405,
      "method_not_allowed",
      `${method} is not allowed here; use ${allowed.join(", ")}`,
      { allowed },
      {
        Allow: allowed.join(", "),
      },
    );
  }
}

export class Conflict extends HttpError {
  constructor(code: string, message: string, details?: unknown) {
    super(409, code, message, details);
  }
}

export class PayloadTooLarge extends HttpError {
  constructor(limitBytes: number) {
    super(413, "payload_too_large", `request body exceeds ${limitBytes} bytes`, { limit_bytes: limitBytes });
  }
}

export class UnsupportedMediaType extends HttpError {
  constructor(got: string | null) {
    super(415, "unsupported_media_type", `expected Content-Type application/json, got ${got ?? "none"}`);
  }
}

export class TooManyRequests extends HttpError {
  constructor(retryAfterSeconds: number, headers: Record<string, string> = {}) {
    super(429, "rate_limited", `rate limit exceeded; retry in ${retryAfterSeconds} s`, undefined, {
      ...headers,
      "Retry-After": String(retryAfterSeconds),
    });
  }
}

export class ServiceUnavailable extends HttpError {
  constructor(code: string, message: string, retryAfterSeconds: number, details?: unknown) {
    super(503, code, message, details, { "Retry-After": String(retryAfterSeconds) });
  }
}

/** A zod failure on a request body: 400 with the issues in `details`. */
export function invalidBody(error: ZodError): BadRequest {
  return new BadRequest("invalid_body", "request body does not match the schema", error.issues);
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Maps anything a handler threw to the contract's JSON error. Unknown errors are logged, never leaked. */
export function toErrorResponse(error: unknown, request?: Request): Response {
  if (error instanceof HttpError) {
    return Response.json(errorBody(error.code, error.message, error.details), {
      status: error.status,
      headers: error.headers,
    });
  }
  if (error instanceof ZodError) return toErrorResponse(invalidBody(error), request);
  if (error instanceof QueueSendError) {
    // Nothing was reported accepted; the client retries with the same ids and dedupe keeps one copy.
    return toErrorResponse(
      new ServiceUnavailable("queue_unavailable", `could not enqueue to ${error.queue}; retry with the same ids`, 5),
      request,
    );
  }
  const incident = crypto.randomUUID();
  log.error("http_unhandled_error", {
    incident,
    method: request?.method,
    path: request ? new URL(request.url).pathname : undefined,
    error: describeError(error),
  });
  return Response.json(
    errorBody("internal_error", "unexpected error; quote the incident id to on-call", { incident }),
    {
      status: 500,
    },
  );
}
