/**
 * A tenant with D1 (`DB`, migrated from ../migrations), KV (`CACHE`) and R2 (`FILES`):
 *   GET  /notes            the notes, newest last        POST /notes?body=&tag=   add one
 *   GET  /kv/<key>         the value (404 when absent)   PUT  /kv/<key>           body is the value
 *   GET  /files/<key>      the object, with its type     PUT  /files/<key>        body and content-type kept
 *   GET  /files            the keys
 */
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, area = "", ...rest] = url.pathname.split("/");
    const key = decodeURIComponent(rest.join("/"));
    if (area === "notes") {
      if (request.method === "POST") {
        const body = url.searchParams.get("body") ?? "";
        const result = await env.DB.prepare("INSERT INTO notes (body, tag, created_at) VALUES (?, ?, ?)")
          .bind(body, url.searchParams.get("tag"), Date.now())
          .run();
        return Response.json({ id: result.meta.last_row_id }, { status: 201 });
      }
      const { results } = await env.DB.prepare("SELECT id, body, tag FROM notes ORDER BY id").all();
      return Response.json(results);
    }
    if (area === "kv" && key !== "") {
      if (request.method === "PUT") {
        await env.CACHE.put(key, await request.text());
        return new Response(null, { status: 204 });
      }
      const value = await env.CACHE.get(key);
      return value === null ? new Response("not found", { status: 404 }) : new Response(value);
    }
    if (area === "files") {
      if (key === "") {
        const listed = await env.FILES.list();
        return Response.json(listed.objects.map((object) => ({ key: object.key, size: object.size })));
      }
      if (request.method === "PUT") {
        const object = await env.FILES.put(key, request.body, {
          httpMetadata: { contentType: request.headers.get("content-type") ?? "application/octet-stream" },
        });
        return Response.json({ key: object.key, size: object.size, etag: object.etag }, { status: 201 });
      }
      const object = await env.FILES.get(key);
      if (object === null) return new Response("not found", { status: 404 });
      const headers = new Headers({ etag: object.httpEtag });
      object.writeHttpMetadata(headers);
      return new Response(object.body, { headers });
    }
    return new Response("storage-tenant: /notes, /kv/<key>, /files/<key>", { status: 404 });
  },
};
