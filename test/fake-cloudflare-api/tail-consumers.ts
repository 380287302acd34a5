/**
 * `tail_consumers` of a script upload (and of a settings PATCH), as the real API takes them
 * (cloudflare-typescript `TailAPI.ConsumerScriptParam`: `{service, environment?, namespace?}`):
 * an array (or null / absent: none) of objects whose `service` names a Worker that exists on the
 * account — an account-level Worker, or with `namespace` a script of that dispatch namespace — so
 * a producer cannot name a consumer deployed after it (the Tail Worker must be deployed first).
 * The real API's error codes for these are not published; the fake answers 400 with code 10021
 * (its validation code) and messages marked "(fake)".
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** A validated tail consumer, as the script's settings return it. */
export interface TailConsumer {
  service: string;
  environment?: string;
  namespace?: string;
}

export class TailConsumerError extends Error {
  override name = "TailConsumerError";
}

const FIELDS = new Set(["service", "environment", "namespace"]);

/**
 * Parses `value` (the metadata's `tail_consumers`); `exists(service, namespace)` answers whether
 * the named Worker is there. Throws `TailConsumerError` with the message the fake answers.
 */
export function parseTailConsumers(
  value: Json | undefined,
  where: string,
  exists: (service: string, namespace: string | undefined) => boolean,
): TailConsumer[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TailConsumerError(`${where}.tail_consumers must be an array (fake)`);
  return value.map((entry, index): TailConsumer => {
    const at = `${where}.tail_consumers[${index}]`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new TailConsumerError(`${at} must be an object with a service (fake)`);
    }
    const object: JsonObject = entry;
    const unknown = Object.keys(object).filter((key) => !FIELDS.has(key));
    if (unknown.length > 0) throw new TailConsumerError(`${at} has unknown fields ${unknown.join(", ")} (fake)`);
    const { service, environment, namespace } = object;
    if (typeof service !== "string" || service === "") {
      throw new TailConsumerError(`${at}.service must be a Worker's name (fake)`);
    }
    for (const [field, text] of [
      ["environment", environment],
      ["namespace", namespace],
    ] as const) {
      if (text !== undefined && typeof text !== "string")
        throw new TailConsumerError(`${at}.${field} must be a string (fake)`);
    }
    const inNamespace = typeof namespace === "string" ? namespace : undefined;
    if (!exists(service, inNamespace)) {
      throw new TailConsumerError(
        `${at}: tail consumer Worker '${service}'${inNamespace === undefined ? "" : ` in dispatch namespace '${inNamespace}'`} does not exist on this account; deploy it before naming it (fake)`,
      );
    }
    return {
      service,
      ...(typeof environment === "string" ? { environment } : {}),
      ...(inNamespace === undefined ? {} : { namespace: inNamespace }),
    };
  });
}
