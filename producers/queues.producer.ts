import { audit } from "../lib/audit.d1.ts";
import { sendAll } from "../lib/queue.ts";
import { queueBinding } from "../lib/queues.ts";
import { QUEUE_NAMES } from "../lib/queues.ts";
import { QueueNameSchema, QueueSendParamsSchema, QueueSendRequestSchema } from "../schemas/dlq.schema.ts";
import { jsonBytes } from "../lib/utf8.ts";
import type { Principal } from "./auth.ts";
import { HttpError, NotFound } from "./errors.ts";
import { pathParams, readJson } from "./http.ts";
import { accepted } from "./responses.ts";

/** Cloudflare Queues' limit for one message (developers.cloudflare.com/queues/platform/limits). */
const MESSAGE_LIMIT_BYTES = 128 * 1024;

/**
 * `POST /v1/admin/queues/:queue/send` (admin): puts one raw message on a queue, unvalidated: the
 * on-call repair tool (re-inject a hand-fixed body, or test that poison ends in the archive). The
 * send is awaited: 202 means the message is in the queue.
 */
export async function postQueueSend(
  request: Request,
  env: Env,
  _ctx: ExecutionContext,
  principal: Principal,
): Promise<Response> {
  const { queue } = pathParams(request, QueueSendParamsSchema);
  const name = QueueNameSchema.safeParse(queue);
  if (!name.success) throw new NotFound(`no queue ${queue}; one of ${QUEUE_NAMES.join(", ")}`);
  const { body } = await readJson(request, QueueSendRequestSchema);
  const bytes = jsonBytes(body.body);
  if (bytes > MESSAGE_LIMIT_BYTES) {
    throw new HttpError(413, "message_too_large", `a queue message is at most ${MESSAGE_LIMIT_BYTES} bytes of JSON`, {
      bytes,
      limit_bytes: MESSAGE_LIMIT_BYTES,
    });
  }
  const delaySeconds = body.delay_seconds ?? 0;
  await sendAll(queueBinding(env, name.data), name.data, [body.body], delaySeconds > 0 ? { delaySeconds } : {});
  await audit(env.DB, {
    type: "queue.sent",
    actor: principal.id,
    details: { queue: name.data, bytes, delay_seconds: delaySeconds },
  });
  return accepted({ queue: name.data, bytes, delay_seconds: delaySeconds });
}
