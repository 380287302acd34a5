/**
 * Who may deploy a project. Each project has its own deploy signing secret
 * (`project_deploy_secrets`); the shared `WEBHOOK_SECRET` only creates projects: it is accepted for
 * a project without a secret yet (that deploy's acceptance creates one) and for retries of that
 * very delivery (same `webhook-id`), which must repeat the first answer, secret included. Anything
 * else is 401 and audited as `deploy.refused` with the reason, who signed it when that can be told
 * (the optional `shipyard-key-id: <project>` header names the claimed signer; its claim is
 * verified, never trusted) and the request's source.
 */
import { audit } from "../lib/audit.d1.ts";
import { type DeploySecretRow, endCreationGrace, getDeploySecret } from "../lib/deploy-secrets.d1.ts";
import { ProjectIdSchema } from "../schemas/deploy.schema.ts";
import { clientSource } from "./client-address.ts";
import { Unauthorized } from "./errors.ts";
import { type WebhookDelivery, signedWith } from "./webhook.ts";

/**
 * How long a retry of a project's creating delivery (same `webhook-id`, shared secret) may repeat
 * the answer with the secret: long enough for a sender's retries after a lost answer, and ended
 * sooner by the first deploy the project's own secret signs or by a rotation. Whoever holds the
 * shared secret and learns that delivery id cannot read the secret after that.
 */
export const CREATION_GRACE_MS = 24 * 3_600_000;

/** The header a sender may use to say whose deploy secret signed the delivery. */
export const KEY_ID_HEADER = "shipyard-key-id";

/** Why a signed deploy was refused (the `reason` of a `deploy.refused` audit entry). */
export type RefusalReason =
  /** Signed with the shared secret, but the project already has its own. */
  | "shared_secret"
  /** Signed with another project's deploy secret (`signed_by` names it). */
  | "other_project_secret"
  /** Signed with no secret Shipyard knows for this project. */
  | "bad_signature";

/** A delivery allowed to deploy `projectId`. */
export type DeployAuthorisation =
  /** Signed with the project's own secret. */
  | { signer: "project"; projectId: string }
  /**
   * Signed with the shared secret for a project without a secret (`existing` null: this delivery
   * creates it), or a retry of the delivery that created it (`existing` its row).
   */
  | { signer: "shared"; projectId: string; existing: DeploySecretRow | null };

/**
 * The `project_id` of a body not yet verified nor validated (`parsed`: its JSON, or undefined when
 * it is not JSON), to pick the secret that must have signed it; null when the body is not a JSON
 * object with a well-formed one (the shared secret is then the only candidate, and validation
 * reports the body after the signature check).
 */
export function claimedProjectId(parsed: unknown): string | null {
  if (typeof parsed !== "object" || parsed === null || !("project_id" in parsed)) return null;
  const id = ProjectIdSchema.safeParse(parsed.project_id);
  return id.success ? id.data : null;
}

/** The actor an accepted deploy is audited under. */
export function deployActor(authorisation: DeployAuthorisation): string {
  return authorisation.signer === "project" ? `deploy-key:${authorisation.projectId}` : "webhook";
}

/**
 * Decides whether `delivery` may deploy the project its body names (`parsed`, the body's JSON if
 * it is JSON), or throws 401 (audited when the project is known). Verification is over the raw
 * bytes, before the body is validated.
 */
export async function authoriseDeploy(
  request: Request,
  env: Env,
  delivery: WebhookDelivery,
  body: Uint8Array,
  parsed: unknown,
): Promise<DeployAuthorisation> {
  const projectId = claimedProjectId(parsed);
  const own = projectId === null ? null : await getDeploySecret(env.DB, projectId);
  if (projectId !== null && own !== null && (await signedWith(own.secret, delivery, body))) {
    if (own.created_by_webhook_id !== null) await endCreationGrace(env.DB, projectId);
    return { signer: "project", projectId };
  }
  if (await signedWith(env.WEBHOOK_SECRET, delivery, body)) {
    // No project id: the body is invalid and schema validation says why (nothing is deployed).
    if (projectId === null) return { signer: "shared", projectId: "", existing: null };
    if (own === null) return { signer: "shared", projectId, existing: null };
    const retryOfCreation =
      own.created_by_webhook_id === delivery.id && Date.now() - own.created_at < CREATION_GRACE_MS;
    if (retryOfCreation) return { signer: "shared", projectId, existing: own };
    throw await refuse(request, env, delivery, projectId, "shared_secret", "shared");
  }
  if (projectId === null) throw new Unauthorized("no valid v1 webhook signature");
  const claimed = ProjectIdSchema.safeParse(request.headers.get(KEY_ID_HEADER));
  if (claimed.success && claimed.data !== projectId) {
    const theirs = await getDeploySecret(env.DB, claimed.data);
    if (theirs !== null && (await signedWith(theirs.secret, delivery, body))) {
      throw await refuse(request, env, delivery, projectId, "other_project_secret", claimed.data);
    }
  }
  throw await refuse(request, env, delivery, projectId, "bad_signature", null);
}

const MESSAGES: Record<RefusalReason, (projectId: string) => string> = {
  shared_secret: (projectId) =>
    `project ${projectId} has its own deploy secret; the shared webhook secret only creates projects (sign with the secret its first deploy returned, or rotate it: shipyard projects rotate-secret ${projectId})`,
  other_project_secret: (projectId) => `signed with another project's deploy secret, not ${projectId}'s`,
  bad_signature: (projectId) => `no valid v1 webhook signature by ${projectId}'s deploy secret`,
};

/** Audits a refused deploy (never with a secret) and answers the 401 to throw. */
async function refuse(
  request: Request,
  env: Env,
  delivery: WebhookDelivery,
  projectId: string,
  reason: RefusalReason,
  signedBy: string | null,
): Promise<Unauthorized> {
  const claimed = request.headers.get(KEY_ID_HEADER);
  await audit(env.DB, {
    type: "deploy.refused",
    actor: signedBy === null ? "unknown" : signedBy === "shared" ? "webhook" : `deploy-key:${signedBy}`,
    projectId,
    details: {
      project: projectId,
      reason,
      // "shared" (the shared secret), a project id (that project's secret), or null (unknown).
      signed_by: signedBy,
      claimed_key_id: claimed === null ? null : claimed.slice(0, 64),
      webhook_id: delivery.id,
      source: clientSource(request, env),
    },
  });
  return new Unauthorized(MESSAGES[reason](projectId));
}
