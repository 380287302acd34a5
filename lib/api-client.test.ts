import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { ApiClient, ApiError, ConnectionError } from "./api-client.ts";

/** The typed client against the real Worker, in this isolate. */
function client(token = "dev-admin-token"): ApiClient {
  return new ApiClient({ baseUrl: "http://shipyard.test", token, fetch: (request) => exports.default.fetch(request) });
}

describe("the typed API client", () => {
  it("calls an operation by id and answers its parsed response", async ({ expect }) => {
    const health = await client().call("getHealth");
    expect(health.ok).toBe(true);
    const accepted = await client("dev-ingest-key").call("postEvents", {
      body: { events: [{ id: crypto.randomUUID(), project_id: "client", type: "t", ts: 1, data: {} }] },
    });
    expect(accepted).toEqual({ accepted: 1 });
  });

  it("fills path params and query, and sends the token only where the route declares a credential", async ({
    expect,
  }) => {
    const api = client();
    expect(api.url("getCounter", { params: { scope: "post", key: "a b/c" } }).pathname).toBe(
      "/v1/counters/post/a%20b%2Fc",
    );
    expect(api.url("listDeadLetters", { query: { queue: "shipyard-telemetry", limit: 5 } }).search).toBe(
      "?queue=shipyard-telemetry&limit=5",
    );
    const page = await api.call("listDeadLetters", { query: { project_id: crypto.randomUUID(), limit: 5 } });
    expect(page.items).toEqual([]);
  });

  it("turns the contract's error body into an ApiError with status, code and details", async ({ expect }) => {
    const refused = client("dev-ingest-key").call("listProjects");
    await expect(refused).rejects.toBeInstanceOf(ApiError);
    await expect(refused).rejects.toMatchObject({ status: 403, code: "forbidden" });
    const invalid = client().call("sendToQueue", { params: { queue: "nope" }, body: { body: 1 } });
    await expect(invalid).rejects.toMatchObject({ status: 404, code: "not_found" });
  });

  it("reports an answer that is not the API as a ConnectionError", async ({ expect }) => {
    const stranger = new ApiClient({
      baseUrl: "http://shipyard.test",
      fetch: async () => Response.json({ something: "else" }),
    });
    await expect(stranger.call("getHealth")).rejects.toBeInstanceOf(ConnectionError);
  });

  it("is typed from the API table (these lines fail `tsc` if it were not)", ({ expect }) => {
    const api = client();
    // @ts-expect-error: an operation that does not exist
    expect(() => api.url("noSuchOperation")).toThrow();
    // @ts-expect-error: getCounter needs its path params
    api.url("getCounter");
    // @ts-expect-error: a body of the wrong shape
    void api.call("postCounters", { body: { events: [] } }).catch(() => null);
  });
});
