import { createMessageBatch, createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, it, vi } from "vitest";
import { queue } from "../consumers/index.ts";
import { scheduled } from "./index.ts";

/** The structured log lines `spy` saw, parsed. */
function logged(spy: { mock: { calls: unknown[][] } }): unknown[] {
  return spy.mock.calls.map((call): unknown => JSON.parse(String(call[0])));
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("wiring mistakes are loud", () => {
  it("a cron with no job is logged cron_without_job, not skipped in silence", async ({ expect }) => {
    const errors = vi.spyOn(console, "error");
    await scheduled(createScheduledController({ cron: "1 2 3 4 5", scheduledTime: Date.now() }), env);
    expect(logged(errors)).toEqual([
      expect.objectContaining({ level: "error", code: "cron_without_job", cron: "1 2 3 4 5" }),
    ]);
  });

  it("a queue with no consumer is logged queue_without_consumer and its messages are kept", async ({ expect }) => {
    const errors = vi.spyOn(console, "error");
    const batch = createMessageBatch("someone-elses-queue", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: {} },
    ]);
    const retryAll = vi.spyOn(batch, "retryAll");
    await queue(batch, env);
    expect(retryAll).toHaveBeenCalledOnce();
    expect(logged(errors)).toEqual([
      expect.objectContaining({ level: "error", code: "queue_without_consumer", queue: "someone-elses-queue" }),
    ]);
  });
});
