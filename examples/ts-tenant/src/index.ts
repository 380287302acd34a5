import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

interface Env {
  readonly GREETING: string;
  readonly FEATURES: { rooms: boolean; max_rooms: number };
  readonly ASSETS: Fetcher;
  readonly ROOMS: DurableObjectNamespace<Room>;
}

/** A chat room: counts its visits in SQLite (RPC). */
export class Room extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(
      "CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
    );
  }

  /** Adds one visit and returns the count. */
  async visit(): Promise<number> {
    return this.ctx.storage.sql
      .exec<{ n: number }>(
        "INSERT INTO visits (id, n) VALUES (1, 1) ON CONFLICT(id) DO UPDATE SET n = n + 1 RETURNING n",
      )
      .one().n;
  }
}

const app = new Hono<{ Bindings: Env }>();

app.get("/api/hello", (c) => c.json({ greeting: c.env.GREETING, features: c.env.FEATURES, framework: "hono" }));

app.post("/api/rooms/:name/visit", async (c) => {
  const visits = await c.env.ROOMS.getByName(c.req.param("name")).visit();
  return c.json({ room: c.req.param("name"), visits });
});

// The page's stylesheet, fetched through the ASSETS binding (the Worker reading its own assets).
app.get("/api/asset-size", async (c) => {
  const css = await c.env.ASSETS.fetch(new URL("/app.css", c.req.url));
  return c.json({ status: css.status, bytes: (await css.text()).length });
});

export default app;
