/** Projects: status, Durable Object usage against the threshold, restore, deploy history, rollback, down. */
import { useState } from "preact/hooks";
import { type DeployStatus, type DoUsage, type ProjectStatus, call } from "./api.ts";
import { ErrorBox, Notice, PageHeading, Time, duration, href, useLoad, usePoll } from "./ui.tsx";

/** `#/projects`: every project with its Durable Object and enforcement status. */
export function Projects() {
  const list = useLoad(() => call("listProjects"), []);
  const projects = list.data?.projects ?? [];
  return (
    <>
      <PageHeading>Projects</PageHeading>
      <ErrorBox error={list.error} />
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Project</th>
              <th scope="col">Status</th>
              <th scope="col">Durable Object classes</th>
              <th scope="col">Migration tag</th>
              <th scope="col">Enforcement</th>
              <th scope="col">Updated</th>
            </tr>
          </thead>
          <tbody>
            {projects.map((project) => (
              <tr key={project.project_id}>
                <td>
                  <a href={href("projects", project.project_id)}>{project.project_id}</a>
                </td>
                <td>{project.status}</td>
                <td>{project.do_classes.join(", ") || "—"}</td>
                <td>{project.do_migration_tag ?? "—"}</td>
                <td>
                  <span class={`status status-${project.do_enforcement_status}`}>{project.do_enforcement_status}</span>
                </td>
                <td>
                  <Time ms={project.updated_at} />
                </td>
              </tr>
            ))}
            {list.data && projects.length === 0 && (
              <tr>
                <td colSpan={6}>No project has been deployed yet.</td>
              </tr>
            )}
          </tbody>
        </table>
      </div>
    </>
  );
}

/**
 * The rolling 24 h wall time against the threshold, as a bar chart (SVG attributes only: the CSP
 * allows no inline style). The scale reaches past the threshold so both are always in view.
 */
function UsageChart({ usage }: { usage: DoUsage }) {
  const max = Math.max(usage.threshold_ms, usage.wall_ms) * 1.1 || 1;
  const width = 600;
  const x = (ms: number) => (ms / max) * width;
  const over = usage.wall_ms >= usage.threshold_ms;
  const label = `Durable Object wall time in the last ${usage.window_hours} h: ${duration(usage.wall_ms)} of a ${duration(usage.threshold_ms)} threshold (${((usage.wall_ms / Math.max(usage.threshold_ms, 1)) * 100).toFixed(1)}%)`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} 70`} role="img" aria-label={label}>
        <rect x="0" y="10" width={width} height="30" class="chart-track" />
        {/* At least a sliver when there is any usage: 300 ms against 8 h would be no bar at all. */}
        <rect
          x="0"
          y="10"
          width={usage.wall_ms > 0 ? Math.max(x(usage.wall_ms), 4) : 0}
          height="30"
          class={over ? "chart-bar over" : "chart-bar"}
        />
        <line x1={x(usage.threshold_ms)} x2={x(usage.threshold_ms)} y1="2" y2="48" class="chart-threshold" />
        <text x={Math.min(x(usage.threshold_ms) + 4, width - 120)} y="64" class="chart-label">
          threshold {duration(usage.threshold_ms)}
        </text>
      </svg>
      <figcaption>{label}</figcaption>
    </figure>
  );
}

interface DeployRef {
  deploy_id: string;
  type: string;
  at: number;
}

function Steps({ deploy }: { deploy: DeployStatus }) {
  return (
    <table>
      <thead>
        <tr>
          <th scope="col">Step</th>
          <th scope="col">State</th>
          <th scope="col" class="num">
            Attempts
          </th>
          <th scope="col">Took</th>
        </tr>
      </thead>
      <tbody>
        {deploy.steps.map((step) => (
          <tr key={step.name}>
            <td>{step.name}</td>
            <td>
              <span class={`status status-${step.state}`}>{step.state}</span>
              {step.error ? ` — ${step.error}` : ""}
            </td>
            <td class="num">{step.attempts}</td>
            <td>{step.started_at && step.finished_at ? duration(step.finished_at - step.started_at) : "—"}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function DeployCard({ deploy }: { deploy: DeployRef }) {
  const status = useLoad(() => call("getDeploy", { params: { id: deploy.deploy_id } }), [deploy.deploy_id]);
  const running = !status.data || status.data.status === "queued" || status.data.status === "running";
  usePoll(status.reload, 2_000, running && !status.error);
  return (
    <details class="card" open={running}>
      <summary>
        <span class="mono">{deploy.deploy_id.slice(0, 8)}</span> {status.data?.kind ?? deploy.type.split(".")[0]} —{" "}
        <span class={`status status-${status.data?.status ?? "unknown"}`}>{status.data?.status ?? "…"}</span> —{" "}
        <Time ms={deploy.at} />
      </summary>
      <ErrorBox error={status.error} />
      {status.data && (
        <>
          <div class="scroll">
            <Steps deploy={status.data} />
          </div>
          {status.data.error && <p class="error">{status.data.error}</p>}
        </>
      )}
    </details>
  );
}

function Down({ project }: { project: ProjectStatus }) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<{ deploy_id: string } | null>(null);
  const down = async () => {
    try {
      setDone(await call("deleteProject", { params: { id: project.project_id }, query: { confirm: typed } }));
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <section aria-labelledby="down-heading" class="card danger-zone">
      <h2 id="down-heading">Take the project down</h2>
      {project.has_durable_objects ? (
        <p class="warning">
          Data loss: the storage of every object of {project.do_classes.join(", ")} is destroyed, for good.
        </p>
      ) : (
        <p>The project has no Durable Objects; its Worker is removed.</p>
      )}
      <label for="confirm-down">Type the project id ({project.project_id}) to confirm</label>
      <div class="row">
        <input
          id="confirm-down"
          value={typed}
          autocomplete="off"
          onInput={(event) => setTyped(event.currentTarget.value)}
        />
        <button type="button" class="danger" disabled={typed !== project.project_id} onClick={() => void down()}>
          Take {project.project_id} down
        </button>
      </div>
      {done && <Notice>Down started: deploy {done.deploy_id}.</Notice>}
      <ErrorBox error={error} />
    </section>
  );
}

/** `#/projects/:id`: everything about one project and its actions. */
export function ProjectDetail({ id }: { id: string }) {
  const project = useLoad(() => call("getProject", { params: { id } }), [id]);
  const usage = useLoad(() => call("getDoUsage", { params: { id } }), [id]);
  const history = useLoad(
    () =>
      call("listAudit", {
        query: { project_id: id, type: "deploy.requested,rollback.requested,down.requested", limit: 1_000 },
      }),
    [id],
  );
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  usePoll(usage.reload, 10_000);
  const restore = async () => {
    setError(null);
    try {
      const answer = await call("restoreEnforcement", { params: { id } });
      setNotice(`Restored ${answer.restored.join(", ") || "nothing"}.`);
      usage.reload();
      project.reload();
    } catch (caught) {
      setError(caught);
    }
  };
  const rollback = async () => {
    setError(null);
    try {
      const answer = await call("rollbackProject", { params: { id } });
      setNotice(`Rollback started: deploy ${answer.deploy_id}.`);
      history.reload();
    } catch (caught) {
      setError(caught);
    }
  };
  const deploys: DeployRef[] = (history.data?.entries ?? [])
    .toReversed()
    .flatMap((entry) =>
      typeof entry.details.deploy_id === "string"
        ? [{ deploy_id: entry.details.deploy_id, type: entry.type, at: entry.at }]
        : [],
    )
    .slice(0, 20);
  const data = project.data;
  const enforced = usage.data?.do_enforcement_status === "enforced";
  return (
    <>
      <p>
        <a href={href("projects")}>← Projects</a>
      </p>
      <PageHeading>Project {id}</PageHeading>
      <ErrorBox error={project.error ?? error} />
      {notice && <Notice>{notice}</Notice>}
      {data && (
        <dl class="facts">
          <dt>Status</dt>
          <dd>{data.status}</dd>
          <dt>Durable Object classes</dt>
          <dd>{data.do_classes.join(", ") || "—"}</dd>
          <dt>Migration tag</dt>
          <dd>{data.do_migration_tag ?? "—"}</dd>
          <dt>Enforcement</dt>
          <dd>
            <span data-testid="enforcement-status" class={`status status-${data.do_enforcement_status}`}>
              {data.do_enforcement_status}
            </span>
          </dd>
          <dt>Current deploy</dt>
          <dd class="mono">{data.current_deploy_id ?? "—"}</dd>
        </dl>
      )}
      <section aria-labelledby="usage-heading" class="card">
        <h2 id="usage-heading">Durable Object usage</h2>
        <ErrorBox error={usage.error} />
        {usage.data && (
          <>
            <UsageChart usage={usage.data} />
            <p>{usage.data.invocations} invocations in the window.</p>
            {enforced && (
              <>
                <p class="warning">
                  Enforced <Time ms={usage.data.enforced_at} />: requests that need these bindings answer 503.
                </p>
                <ul>
                  {usage.data.removed_bindings.map((binding) => (
                    <li key={binding.name}>
                      {binding.name} ({binding.class_name})
                    </li>
                  ))}
                </ul>
                <button type="button" onClick={() => void restore()}>
                  Restore bindings
                </button>
              </>
            )}
            {!enforced && <p>No bindings removed.</p>}
          </>
        )}
      </section>
      <section aria-labelledby="history-heading">
        <h2 id="history-heading">Deploy history</h2>
        <div class="row">
          <button type="button" class="secondary" disabled={!data?.previous_deploy_id} onClick={() => void rollback()}>
            Roll back to the previous version
          </button>
        </div>
        <ErrorBox error={history.error} />
        {deploys.map((deploy) => (
          <DeployCard key={deploy.deploy_id} deploy={deploy} />
        ))}
        {history.data && deploys.length === 0 && <p>No deploy in the last 30 days.</p>}
      </section>
      {data && data.status === "active" && <Down project={data} />}
    </>
  );
}
