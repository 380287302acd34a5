import { env } from "cloudflare:workers";
import type { ControlCommand } from "./fake-cloudflare-api/protocol.ts";

/** Sends a test control command to the fake Cloudflare API (test/fake-cloudflare-api/protocol.ts). */
export async function control(command: ControlCommand): Promise<void> {
  const response = await fetch(new URL("/__control", env.CF_API_BASE_URL), {
    method: "POST",
    body: JSON.stringify(command),
  });
  if (!response.ok) throw new Error(`fake control refused ${JSON.stringify(command)}: ${await response.text()}`);
}
