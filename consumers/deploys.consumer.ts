import { describeError, log } from "../lib/log.ts";
import { DeployRequestedEnvelopeSchema } from "../schemas/envelope.schema.ts";
import { deadLetter } from "./dead-letter.ts";
import { retryDelaySeconds } from "./fan-out.ts";
import { type Failure, retryWithReasons } from "./failures.ts";
import { QUEUES } from "../lib/queues.ts";

/** The runtime's answer when an instance id is taken: the deploy was started before. */
function alreadyExists(error: unknown): boolean {
  return /already exists|already_exists|duplicate/i.test(describeError(error));
}

/**
 * `shipyard-deploys` consumer: starts a `DeployWorkflow` per message with the deploy id as the
 * instance id, so a redelivered message (or a second trigger) finds the instance there and counts
 * it as started: one deploy, however often it is triggered.
 */
export async function consumeDeploys(batch: MessageBatch, env: Env): Promise<void> {
  const failures: Failure[] = [];
  for (const message of batch.messages) {
    const parsed = DeployRequestedEnvelopeSchema.safeParse(message.body);
    if (!parsed.success) {
      await deadLetter(env.DEPLOYS_DLQ, QUEUES.deploys.name, message, parsed.error);
      continue;
    }
    const { deploy_id, project_id, kind, source_deploy_id } = parsed.data;
    try {
      await env.DEPLOY_WORKFLOW.create({
        id: deploy_id,
        params: { deployId: deploy_id, projectId: project_id, kind, sourceDeployId: source_deploy_id },
      });
      log.info("deploy_started", { deploy_id, project_id, kind });
      message.ack();
    } catch (error) {
      if (alreadyExists(error)) {
        log.info("deploy_already_started", { deploy_id, project_id });
        message.ack();
        continue;
      }
      log.warn("deploy_start_failed", { deploy_id, error: describeError(error) });
      failures.push({
        message,
        reason: `starting the deploy workflow failed: ${describeError(error)}`,
        delaySeconds: retryDelaySeconds(message.attempts),
      });
    }
  }
  await retryWithReasons(env.DB, QUEUES.deploys.name, failures);
}
