/** 202 Accepted with a JSON body. */
export function accepted(body: unknown, headers?: HeadersInit): Response {
  return Response.json(body, { status: 202, headers });
}

/** 200 OK with a JSON body. */
export function ok(body: unknown, headers?: HeadersInit): Response {
  return Response.json(body, { status: 200, headers });
}
