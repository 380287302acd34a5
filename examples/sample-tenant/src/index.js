// The sample tenant: a Worker with one SQLite-backed Durable Object (Counter) and a route that
// needs no Durable Object. Shipyard's tests and demo deploy it, change it and roll it back.
import { DurableObject } from "cloudflare:workers";
import { VERSION } from "./version.js";

export class Counter extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS counts (name TEXT PRIMARY KEY, n INTEGER NOT NULL)");
  }

  /** RPC: adds one to this counter and returns the new value. */
  async increment() {
    return this.ctx.storage.sql
      .exec("INSERT INTO counts (name, n) VALUES ('hits', 1) ON CONFLICT(name) DO UPDATE SET n = n + 1 RETURNING n")
      .one().n;
  }

  async fetch(request) {
    // `?work=<ms>` holds the object busy for a while (up to 1 s): wall time for metering to see.
    const work = Math.min(Number(new URL(request.url).searchParams.get("work") ?? 0) || 0, 1000);
    if (work > 0) await new Promise((resolve) => setTimeout(resolve, work));
    return Response.json({ count: await this.increment(), version: VERSION });
  }
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/" || url.pathname === "/hello") {
      return Response.json({ message: env.GREETING ?? "hello", version: VERSION });
    }
    const match = url.pathname.match(/^\/counter\/([A-Za-z0-9_-]+)(\/rpc)?$/);
    if (match) {
      const stub = env.COUNTER.getByName(match[1]);
      if (match[2]) return Response.json({ count: await stub.increment(), version: VERSION, via: "rpc" });
      return stub.fetch(request);
    }
    return new Response("not found", { status: 404 });
  },
};
