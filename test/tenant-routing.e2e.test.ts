import { exports } from "cloudflare:workers";
import { describe, it } from "vitest";
import { keepBelowPrefix, tenantOfHost } from "../producers/tenant.producer.ts";
import { BASE_URL, deployAndWait, projectId, realtimeManifest } from "./deploy-helpers.ts";

/**
 * A tenant has its own origin, `http://<project>.localhost:<port>/`, where it is served at its root;
 * under Shipyard's `/t/<project>/` its redirects are rewritten to stay below the prefix.
 */
/** Where a 302 to `location` from the tenant ends up under `/t/p/` on http://h.test. */
function rewritten(location: string): string | null {
  const response = new Response(null, { status: 302, headers: { location } });
  return keepBelowPrefix(response, "/t/p", "http://h.test").headers.get("location");
}

describe("tenant routing", () => {
  it("<project>.localhost serves the tenant at its root, redirects untouched; other hosts reach the API", async ({
    expect,
  }) => {
    const project = projectId("host");
    await deployAndWait(realtimeManifest(project));
    const origin = `http://${project}.localhost:8787`;
    expect(await (await exports.default.fetch(`${origin}/`)).json()).toEqual({ app: "realtime-tenant" });
    const redirect = await exports.default.fetch(`${origin}/go`, { redirect: "manual" });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.get("location")).toBe("/landed");
    expect(await (await exports.default.fetch(`${origin}/landed`)).text()).toBe("landed");
    // The tenant's own paths win on its origin, even where they look like Shipyard's API.
    expect((await exports.default.fetch(`${origin}/v1/health`)).status).toBe(404);

    expect((await exports.default.fetch("http://localhost:8787/v1/health")).status).toBe(200);
    const unknown = await exports.default.fetch("http://no-such-project.localhost/");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("under /t/<project>/, root-relative and same-origin redirects stay below the prefix", async ({ expect }) => {
    const project = projectId("redir");
    await deployAndWait(realtimeManifest(project));
    const relative = await exports.default.fetch(`${BASE_URL}/t/${project}/go`, { redirect: "manual" });
    expect(relative.status).toBe(302);
    expect(relative.headers.get("location")).toBe(`/t/${project}/landed`);
    const absolute = await exports.default.fetch(`${BASE_URL}/t/${project}/go-absolute`, { redirect: "manual" });
    expect(absolute.status).toBe(302);
    expect(absolute.headers.get("location")).toBe(`${BASE_URL}/t/${project}/landed`);
  });

  it("tenantOfHost and keepBelowPrefix", ({ expect }) => {
    expect(tenantOfHost("shop.localhost", "localhost")).toBe("shop");
    expect(tenantOfHost("SHOP.Localhost", "localhost")).toBe("shop");
    expect(tenantOfHost("localhost", "localhost")).toBeNull();
    expect(tenantOfHost("a.b.localhost", "localhost")).toBeNull();
    expect(tenantOfHost("127.0.0.1", "localhost")).toBeNull();
    expect(tenantOfHost("shop.tenants.example.com", "tenants.example.com")).toBe("shop");

    expect(rewritten("/x?y=1#z")).toBe("/t/p/x?y=1#z");
    expect(rewritten("http://h.test/x")).toBe("http://h.test/t/p/x");
    expect(rewritten("http://h.test/t/p/x")).toBe("http://h.test/t/p/x");
    expect(rewritten("https://elsewhere.test/x")).toBe("https://elsewhere.test/x");
    expect(rewritten("//elsewhere.test/x")).toBe("//elsewhere.test/x");
    expect(rewritten("next")).toBe("next");
  });
});
