/**
 * The realtime part of the demo's deploy: `examples/realtime-tenant` (a WorkerEntrypoint default
 * export, a WebSocket room on the Hibernation API and a Durable Object alarm) deployed through the
 * signed webhook, then checked from outside as a user would: two WebSocket clients in one room, an
 * alarm that fires, the tenant's own origin (`<project>.localhost`) and redirects under `/t/`.
 */
import http from "node:http";
import path from "node:path";
import { z } from "zod";
import { readManifest } from "../../cli/manifest.ts";
import { type Phase, fmt } from "../lib/report.ts";
import type { Stack } from "../lib/stack.ts";
import { ROOT } from "../lib/wrangler.ts";
import { apiCall, brief, call, waitFor } from "./api.ts";
import { type DemoContext, need } from "./context.ts";
import { type DeployOptions, deployManifest } from "./deploy.ts";

export const REALTIME_DIR = path.join(ROOT, "examples", "realtime-tenant");
const SECTION = "Realtime tenant (WebSockets, alarms, own origin)";

const TickerSchema = z.object({ alarm: z.number().nullable(), fired: z.number(), attempts: z.number() });
const RoomMessageSchema = z.object({ message: z.string(), n: z.number() });

/** One WebSocket client: opens, collects messages, closes. */
async function joinRoom(url: string): Promise<{ socket: WebSocket; received: string[] }> {
  const socket = new WebSocket(url);
  const received: string[] = [];
  socket.addEventListener("message", (event) => {
    received.push(String(event.data));
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`WebSocket ${url} did not open within 10 s`)), 10_000);
    socket.addEventListener("open", () => {
      clearTimeout(timer);
      resolve();
    });
    socket.addEventListener("error", () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket ${url} failed to open`));
    });
  });
  return { socket, received };
}

/**
 * A GET with another Host header (the tenant's own origin): node:http, because Node's resolver does
 * not map `*.localhost` to loopback as browsers and curl do.
 */
function getWithHost(
  stack: Stack,
  host: string,
  pathname: string,
): Promise<{ status: number; location: string | null; body: string }> {
  const target = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: target.hostname, port: target.port, path: pathname, method: "GET", headers: { host }, timeout: 30_000 },
      (response) => {
        let body = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => (body += chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, location: response.headers.location ?? null, body }),
        );
      },
    );
    request.on("timeout", () => request.destroy(new Error(`GET ${host}${pathname}: no answer within 30 s`)));
    request.on("error", reject);
    request.end();
  });
}

export function realtimePhase(options: DeployOptions): Phase<DemoContext> {
  return {
    name: "realtime",
    title: "A realtime tenant: WebSocket room, Durable Object alarm, its own origin",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const manifest = await readManifest(REALTIME_DIR);
      const project = manifest.project_id;
      await deployManifest(ctx, manifest, "realtime", options.timeoutMs);

      // WebSocket room: two members, a message from one reaches both, counted in the room's SQLite.
      const roomUrl = `${stack.url.replace(/^http/, "ws")}/t/${project}/room/demo`;
      const alice = await joinRoom(roomUrl);
      const bob = await joinRoom(roomUrl);
      alice.socket.send("hello from alice");
      const both = await waitFor(
        stack,
        {
          timeoutMs: 10_000,
          intervalMs: 50,
          describe: () => `alice ${alice.received.length}, bob ${bob.received.length} messages`,
        },
        async () =>
          alice.received.length >= 1 && bob.received.length >= 1 ? [alice.received[0], bob.received[0]] : undefined,
      );
      alice.socket.close(1000, "demo done");
      bob.socket.close(1000, "demo done");
      const messages = both.map((text) => RoomMessageSchema.safeParse(JSON.parse(text ?? "null")));
      const roundTrip = messages.every((m) => m.success && m.data.message === "hello from alice" && m.data.n === 1);
      ctx.report.set(SECTION, "WebSocket room (2 clients)", both.join(" | "));
      ctx.report.check(
        "realtime: a WebSocket message round-trips through the Room Durable Object to both members",
        roundTrip,
        both.join(" | "),
      );

      // Alarm: armed 500 ms ahead, then fired by the host object that holds it for the facet.
      const armed = await call(stack, "POST", `/t/${project}/ticker/demo/arm?in=500`);
      const started = Date.now();
      const fired = await waitFor(
        stack,
        { timeoutMs: 15_000, intervalMs: 200, describe: () => "the Ticker's alarm has not fired" },
        async () => {
          const answer = await call(stack, "GET", `/t/${project}/ticker/demo`);
          const parsed = TickerSchema.safeParse(answer.body);
          return parsed.success && parsed.data.fired >= 1 ? parsed.data : undefined;
        },
      );
      ctx.report.set(
        SECTION,
        "alarm",
        `armed → ${armed.status} ${brief(armed.body, 80)}; fired within ${fmt.s(Date.now() - started)}: ${brief(fired, 80)}`,
      );
      ctx.report.check(
        "realtime: the Durable Object alarm is set and fires",
        fired.fired === 1 && fired.alarm === null,
        brief(fired, 120),
      );

      // Usage is current: every invocation above is counted without an enforcement cycle.
      const usage = await waitFor(
        stack,
        { timeoutMs: 15_000, intervalMs: 300, describe: () => "do-usage has not counted the alarm yet" },
        async () => {
          const answer = await apiCall(stack, "getDoUsage", { params: { id: project } });
          // 2 WebSocket upgrades (fetch) + 1 message + arm, the alarm, and the polls of the ticker.
          return answer.invocations >= 5 ? answer : undefined;
        },
      );
      ctx.report.set(
        SECTION,
        "do-usage",
        `${usage.invocations} invocations, source ${usage.source}, as of ${new Date(usage.as_of).toISOString()}`,
      );
      ctx.report.check(
        "realtime: do-usage counts the room's and the alarm's invocations at once",
        usage.invocations >= 5,
        brief(usage, 160),
      );

      // Own origin and redirects.
      const host = `${project}.localhost:${new URL(stack.url).port}`;
      const own = await getWithHost(stack, host, "/go");
      const prefixed = await getWithHost(stack, new URL(stack.url).host, `/t/${project}/go`);
      ctx.report.set(SECTION, `GET http://${host}/go`, `${own.status} Location ${own.location ?? "-"}`);
      ctx.report.check(
        "realtime: the tenant's own origin serves it at its root",
        own.status === 302 && own.location === "/landed",
        `${own.status} ${own.location ?? ""}`,
      );
      ctx.report.set(SECTION, `GET /t/${project}/go`, `${prefixed.status} Location ${prefixed.location ?? "-"}`);
      ctx.report.check(
        "realtime: a redirect under /t/<project>/ stays below the prefix",
        prefixed.status === 302 && prefixed.location === `/t/${project}/landed`,
        `${prefixed.status} ${prefixed.location ?? ""}`,
      );
    },
  };
}
