import type { CredentialKind, EndpointSpec } from "../schemas/api.ts";
import { API, type OperationId } from "../schemas/api.ts";
import { getAudit } from "./audit.producer.ts";
import { getCounter, postCounters } from "./counters.producer.ts";
import {
  deleteProject,
  postExportResource,
  getDeployStatus,
  getProjectStatus,
  getProjects,
  postDeploy,
  postRollback,
  postRotateDeploySecret,
} from "./deploys.producer.ts";
import {
  deleteDeadLetterById,
  getDeadLetterById,
  getDeadLetterStats,
  getDeadLetters,
  getRedrive,
  postPurge,
  postRedrive,
  postRedriveCancel,
} from "./dlq.producer.ts";
import { getDoUsage, getEnforcementRun, postEnforcementRestore, postEnforcementRun } from "./enforcement.producer.ts";
import { postEvents } from "./events.producer.ts";
import type { Handler } from "./handler.ts";
import { getHealth } from "./health.producer.ts";
import { getMetrics } from "./metrics.producer.ts";
import { postQueueSend } from "./queues.producer.ts";
import { getRateLimits, resetRateLimits } from "./rate-limits.producer.ts";
import { deleteSession, getSession, postSession } from "./session.producer.ts";

/**
 * Who may call: `auth` names the credential the router demands before the handler runs (401 for
 * none or an unknown one, 403 for the other kind), and the handler receives the principal; routes
 * with `auth: "none"` (health, the signed webhook) authenticate nothing at the router.
 */
type RouteAuth = { auth: "none"; handler: Handler<null> } | { auth: CredentialKind; handler: Handler };

/**
 * One entry per endpoint: its spec from the API table (schemas/api.ts, which the OpenAPI document
 * and the typed client read too) and the handler that serves it.
 */
export type RouteSpec = Omit<EndpointSpec, "auth"> & { operationId: string } & RouteAuth;

/** An endpoint's spec with its operation id, literal types kept (so `auth` picks the handler type). */
function endpoint<K extends OperationId>(operationId: K): (typeof API)[K] & { operationId: K } {
  return { ...API[operationId], operationId };
}

export const ROUTES: readonly RouteSpec[] = [
  { ...endpoint("getHealth"), handler: getHealth },
  { ...endpoint("postEvents"), handler: postEvents },
  { ...endpoint("postCounters"), handler: postCounters },
  { ...endpoint("getCounter"), handler: getCounter },
  { ...endpoint("postDeploy"), handler: postDeploy },
  { ...endpoint("getDeploy"), handler: getDeployStatus },
  { ...endpoint("listProjects"), handler: getProjects },
  { ...endpoint("getProject"), handler: getProjectStatus },
  { ...endpoint("deleteProject"), handler: deleteProject },
  { ...endpoint("exportResource"), handler: postExportResource },
  { ...endpoint("rollbackProject"), handler: postRollback },
  { ...endpoint("rotateDeploySecret"), handler: postRotateDeploySecret },
  { ...endpoint("getDoUsage"), handler: getDoUsage },
  { ...endpoint("restoreEnforcement"), handler: postEnforcementRestore },
  { ...endpoint("runEnforcement"), handler: postEnforcementRun },
  { ...endpoint("getEnforcementRun"), handler: getEnforcementRun },
  { ...endpoint("listAudit"), handler: getAudit },
  { ...endpoint("listDeadLetters"), handler: getDeadLetters },
  // Before getDeadLetter: `/v1/admin/dlq/:id` would take "stats" as an id.
  { ...endpoint("getDeadLetterStats"), handler: getDeadLetterStats },
  { ...endpoint("purgeDeadLetters"), handler: postPurge },
  { ...endpoint("startRedrive"), handler: postRedrive },
  { ...endpoint("getRedrive"), handler: getRedrive },
  { ...endpoint("cancelRedrive"), handler: postRedriveCancel },
  { ...endpoint("getDeadLetter"), handler: getDeadLetterById },
  { ...endpoint("deleteDeadLetter"), handler: deleteDeadLetterById },
  { ...endpoint("sendToQueue"), handler: postQueueSend },
  { ...endpoint("getMetrics"), handler: getMetrics },
  { ...endpoint("getRateLimits"), handler: getRateLimits },
  { ...endpoint("resetRateLimits"), handler: resetRateLimits },
  // The on-call console's session (producers/session.producer.ts).
  { ...endpoint("createSession"), handler: postSession },
  { ...endpoint("getSession"), handler: getSession },
  { ...endpoint("deleteSession"), handler: deleteSession },
];
