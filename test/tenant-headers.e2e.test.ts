/**
 * What a tenant sees of its caller (issue 13, docs/reliability-tenants.md rows T5.2, T5.3): under
 * Shipyard's origin (`/t/<project>/`) neither `Authorization` nor `Cookie` reaches the tenant, and
 * its `Set-Cookie` never reaches the client; on its own origin (`<project>.localhost`) its cookies
 * and its own authorization are its business, but a Shipyard credential is still removed.
 */
import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { ADMIN, BASE_URL, deployAndWait, projectId, sampleManifest } from "./deploy-helpers.ts";
import { INGEST_KEY } from "./helpers.ts";

/** A tenant that answers the headers it received and sets a cookie. */
const ECHO = `export default {
  async fetch(request) {
    return new Response(JSON.stringify({
      authorization: request.headers.get("authorization"),
      cookie: request.headers.get("cookie"),
    }), {
      headers: [["content-type", "application/json"], ["set-cookie", "tenant=1; Path=/"], ["set-cookie", "other=2"]],
    });
  },
};
`;

async function deployEcho(prefix: string): Promise<string> {
  const project = projectId(prefix);
  await deployAndWait({
    ...sampleManifest(project),
    main_module: "echo.js",
    modules: [{ name: "echo.js", type: "esm", content: ECHO }],
    config: {},
  });
  return project;
}

interface Seen {
  authorization: string | null;
  cookie: string | null;
}

describe("tenant headers", () => {
  it("T5.2 under /t/<project>/ the tenant sees no Authorization or Cookie, and its Set-Cookie is dropped", async ({
    expect,
  }) => {
    const project = await deployEcho("hdr-t");
    for (const authorization of [ADMIN.authorization, `Bearer ${INGEST_KEY}`, "Bearer the-tenants-own-token"]) {
      const response = await exports.default.fetch(`${BASE_URL}/t/${project}/echo`, {
        headers: { authorization, cookie: "shipyard_session=s3cr3t; theme=dark" },
      });
      expect(response.status).toBe(200);
      expect(await response.json<Seen>()).toEqual({ authorization: null, cookie: null });
      expect(response.headers.has("set-cookie")).toBe(false);
      expect(response.headers.getSetCookie()).toEqual([]);
    }
  });

  it("T5.3 on <project>.localhost the tenant keeps its cookies and own authorization, never a Shipyard credential", async ({
    expect,
  }) => {
    const project = await deployEcho("hdr-o");
    const origin = `http://${project}.localhost:8787`;
    const call = async (authorization: string) => {
      const response = await exports.default.fetch(`${origin}/echo`, {
        headers: { authorization, cookie: "session=tenant-cookie" },
      });
      expect(response.status).toBe(200);
      // The tenant's own origin: its cookies are its own to set.
      expect(response.headers.getSetCookie()).toEqual(["tenant=1; Path=/", "other=2"]);
      return response.json<Seen>();
    };
    expect(await call("Bearer the-tenants-own-token")).toEqual({
      authorization: "Bearer the-tenants-own-token",
      cookie: "session=tenant-cookie",
    });
    expect(await call(ADMIN.authorization)).toEqual({ authorization: null, cookie: "session=tenant-cookie" });
    expect(await call(`Bearer ${INGEST_KEY}`)).toEqual({ authorization: null, cookie: "session=tenant-cookie" });
  });
});
