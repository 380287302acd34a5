import { WorkerEntrypoint } from "cloudflare:workers";

/**
 * The telemetry queue as the tenant runtime (process B, platform/local/tenant-runtime.ts) sees it:
 * B's `TELEMETRY_QUEUE` is a service binding to this entrypoint of the control plane, which sends
 * into the real queue. A usage record the host measured is in the control plane's queue once
 * `sendBatch` resolves, so a crash of B loses at most the records of invocations still running.
 * (wrangler's dev registry can also carry a queue producer across processes, but it buffers the
 * messages in B's own broker first, where a crash of B would lose them.) Tenant code never holds
 * this binding: B's env is not the tenant's env.
 */
export class TenantUsageRelay extends WorkerEntrypoint<Env> {
  /** `Queue.sendBatch` on the telemetry queue. */
  async sendBatch(messages: MessageSendRequest[]): Promise<void> {
    await this.env.TELEMETRY_QUEUE.sendBatch(messages);
  }

  /** `Queue.send` on the telemetry queue. */
  async send(body: unknown, options?: QueueSendOptions): Promise<void> {
    await this.env.TELEMETRY_QUEUE.send(body, options);
  }
}
