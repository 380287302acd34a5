// A tenant with a WebSocket room and an alarm, as chat and multiplayer templates have them.
import { DurableObject, WorkerEntrypoint } from "cloudflare:workers";

/** A chat room on the WebSocket Hibernation API: the object may sleep while sockets stay open. */
export class Room extends DurableObject {
  // Changes whenever the object is started again (after hibernation, for example).
  #instance = crypto.randomUUID();

  constructor(ctx, env) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS stats (key TEXT PRIMARY KEY, n INTEGER NOT NULL)");
  }

  async fetch(request) {
    if (request.headers.get("Upgrade") !== "websocket") {
      return Response.json({
        sockets: this.ctx.getWebSockets().length,
        messages: this.#count(),
        instance: this.#instance,
      });
    }
    const [client, server] = Object.values(new WebSocketPair());
    if (new URL(request.url).searchParams.get("mode") === "plain") {
      server.accept();
      server.addEventListener("message", (event) => server.send(`plain:${event.data}`));
    } else {
      this.ctx.acceptWebSocket(server);
    }
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(ws, message) {
    const n = this.ctx.storage.sql
      .exec("INSERT INTO stats (key, n) VALUES ('messages', 1) ON CONFLICT(key) DO UPDATE SET n = n + 1 RETURNING n")
      .one().n;
    for (const peer of this.ctx.getWebSockets()) peer.send(JSON.stringify({ message: String(message), n }));
  }

  async webSocketClose(ws, code, reason) {
    ws.close(code, reason);
  }

  #count() {
    return this.ctx.storage.sql.exec("SELECT n FROM stats WHERE key = 'messages'").toArray()[0]?.n ?? 0;
  }
}

/** Sets, reads and deletes its alarm; the alarm throws on its first `fail` attempts. */
export class Ticker extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    if (request.method === "POST" && url.pathname.endsWith("/arm")) {
      const delay = Number(url.searchParams.get("in") ?? 100);
      await this.ctx.storage.put("fail", Number(url.searchParams.get("fail") ?? 0));
      await this.ctx.storage.setAlarm(Date.now() + delay);
    } else if (request.method === "DELETE" && url.pathname.endsWith("/alarm")) {
      await this.ctx.storage.deleteAlarm();
    }
    return Response.json(await this.#state());
  }

  async alarm(info) {
    const attempts = ((await this.ctx.storage.get("attempts")) ?? 0) + 1;
    await this.ctx.storage.put("attempts", attempts);
    const fail = (await this.ctx.storage.get("fail")) ?? 0;
    if (fail > 0) {
      await this.ctx.storage.put("fail", fail - 1);
      throw new Error(`alarm attempt ${attempts} fails on purpose (retry ${info?.retryCount ?? 0})`);
    }
    await this.ctx.storage.put("fired", ((await this.ctx.storage.get("fired")) ?? 0) + 1);
  }

  async #state() {
    return {
      alarm: await this.ctx.storage.getAlarm(),
      fired: (await this.ctx.storage.get("fired")) ?? 0,
      attempts: (await this.ctx.storage.get("attempts")) ?? 0,
    };
  }
}

export default class extends WorkerEntrypoint {
  async fetch(request) {
    const url = new URL(request.url);
    const [, kind, name] = url.pathname.split("/");
    if (url.pathname === "/") return Response.json({ app: "realtime-tenant" });
    if (url.pathname === "/go") return new Response(null, { status: 302, headers: { location: "/landed" } });
    if (url.pathname === "/go-absolute") return Response.redirect(new URL("/landed", url).toString(), 302);
    if (url.pathname === "/landed") return new Response("landed");
    if (kind === "room" && name) return this.env.ROOM.getByName(name).fetch(request);
    if (kind === "ticker" && name) return this.env.TICKER.getByName(name).fetch(request);
    return new Response("not found", { status: 404 });
  }
}
