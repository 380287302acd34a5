import { env } from "cloudflare:workers";
import { describe, it } from "vitest";
import { config } from "./config.ts";

describe("config", () => {
  it("defaults FLUSH_DELAY_MS to 5 s, mode to primary and 32 shards when vars are unset", ({ expect }) => {
    expect(config({})).toMatchObject({ FLUSH_DELAY_MS: 5_000, RUNTIME_EVENT_DO_MODE: "primary", SHARD_COUNT: 32 });
  });

  it("memoises per env object, so a copy of env with another mode is parsed on its own", ({ expect }) => {
    expect(config(env).RUNTIME_EVENT_DO_MODE).toBe("primary");
    expect(config({ ...env, RUNTIME_EVENT_DO_MODE: "shadow" }).RUNTIME_EVENT_DO_MODE).toBe("shadow");
    expect(config(env)).toBe(config(env));
    expect(config(env).RUNTIME_EVENT_DO_MODE).toBe("primary");
  });

  it("fails loudly on a malformed value instead of falling back to a default", ({ expect }) => {
    expect(() => config({ RUNTIME_EVENT_DO_MODE: "sideways" })).toThrow(/invalid configuration/);
    expect(() => config({ FLUSH_DELAY_MS: "-5" })).toThrow(/invalid configuration/);
  });

  it("batch is a telemetry mode only: counters have no batch path", ({ expect }) => {
    expect(config({ RUNTIME_EVENT_DO_MODE: "batch" }).RUNTIME_EVENT_DO_MODE).toBe("batch");
    expect(() => config({ COUNTER_DO_MODE: "batch" })).toThrow(/invalid configuration/);
  });
});

describe("RATE_LIMITS bounds", () => {
  it("refuses a limit the rate-limit shard could not enforce (over 1,000,000) instead of degrading silently", ({
    expect,
  }) => {
    expect(() => config({ RATE_LIMITS: JSON.stringify({ ingest: { limit: 10_000_000, window_s: 60 } }) })).toThrow(
      /invalid configuration/,
    );
    expect(
      config({ RATE_LIMITS: JSON.stringify({ ingest: { limit: 1_000_000, window_s: 60 } }) }).RATE_LIMITS.ingest.limit,
    ).toBe(1_000_000);
  });
});
