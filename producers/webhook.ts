import { Unauthorized } from "./errors.ts";

/**
 * Standard Webhooks verification (standardwebhooks.com): the signature is HMAC-SHA256 with the
 * secret's bytes (`whsec_<base64>`) over `<webhook-id>.<webhook-timestamp>.<raw body>`, sent as a
 * space-separated list of `v1,<base64>` (several during a secret rotation). Verified over the raw
 * bytes with WebCrypto's `verify`, which compares in constant time; timestamps more than 300 s
 * off either way are refused (replay window). Why not the `standardwebhooks` package: it computes
 * HMAC in pure JavaScript and synchronously, slow on the 25 MiB bodies deploys may carry, where
 * WebCrypto is native.
 */
export const WEBHOOK_TOLERANCE_S = 300;

export interface WebhookHeaders {
  id: string;
  timestamp: number;
}

const encoder = new TextEncoder();

function decodeBase64(text: string): Uint8Array | null {
  try {
    return Uint8Array.from(atob(text), (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}

async function hmacKey(secret: string): Promise<CryptoKey> {
  const bytes = decodeBase64(secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret);
  if (!bytes || bytes.length === 0) throw new Error("WEBHOOK_SECRET is not a whsec_<base64> secret");
  return crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
}

/** Signs like a sender would (tests, the CLI): `v1,<base64>`. */
export async function signWebhook(secret: string, id: string, timestamp: number, body: Uint8Array): Promise<string> {
  const key = await hmacKey(secret);
  const signature = await crypto.subtle.sign("HMAC", key, concat(encoder.encode(`${id}.${timestamp}.`), body));
  return `v1,${btoa(String.fromCharCode(...new Uint8Array(signature)))}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** A delivery whose headers passed the checks that need no secret (presence, format, replay window). */
export interface WebhookDelivery extends WebhookHeaders {
  /** The timestamp exactly as sent: the signature covers the text, not the number. */
  timestampText: string;
  /** The `webhook-signature` header: space-separated `v1,<base64>` candidates. */
  signatures: string;
}

/**
 * Checks the webhook headers that need no secret, or throws 401 with a message saying which check
 * failed: all three present, the timestamp Unix seconds within the replay window.
 */
export function readWebhookDelivery(headers: Headers, now: number = Date.now()): WebhookDelivery {
  const id = headers.get("webhook-id");
  const timestampText = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  if (!id || !timestampText || !signatures) {
    throw new Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header");
  }
  if (id.length > 256) throw new Unauthorized("webhook-id is too long");
  if (!/^\d{1,12}$/.test(timestampText)) throw new Unauthorized("webhook-timestamp must be Unix seconds");
  const timestamp = Number(timestampText);
  if (Math.abs(now / 1000 - timestamp) > WEBHOOK_TOLERANCE_S) {
    throw new Unauthorized(`webhook-timestamp is more than ${WEBHOOK_TOLERANCE_S} s away from now`);
  }
  return { id, timestamp, timestampText, signatures };
}

/** Whether one of the delivery's `v1` signatures is `secret`'s HMAC over `body` (constant-time compare). */
export async function signedWith(secret: string, delivery: WebhookDelivery, body: Uint8Array): Promise<boolean> {
  const key = await hmacKey(secret);
  const signed = concat(encoder.encode(`${delivery.id}.${delivery.timestampText}.`), body);
  for (const candidate of delivery.signatures.split(" ")) {
    const [version, encoded] = candidate.split(",", 2);
    if (version !== "v1" || !encoded) continue;
    const signature = decodeBase64(encoded);
    if (signature && (await crypto.subtle.verify("HMAC", key, signature, signed))) return true;
  }
  return false;
}

/** A new Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}
