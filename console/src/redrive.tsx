/** Redrive: one task's live progress and cancel; the last tasks per source queue. */
import { useState } from "preact/hooks";
import { type RedriveStatus, call } from "./api.ts";
import { ErrorBox, PageHeading, Time, duration, href, useLoad, usePoll } from "./ui.tsx";

const ACTIVE = new Set(["running", "cancelling"]);

/** Moved so far, over how long, and the average (the velocity limit is per round of a second). */
function rate(task: RedriveStatus): string {
  const ms = Math.max((task.finished_at ?? task.updated_at) - task.created_at, 1);
  return `${task.moved} moved in ${duration(ms)} (${((task.moved * 1_000) / ms).toFixed(1)}/s on average)`;
}

/** `#/redrive/:task`: the live bar (moved / total), rate, status, cancel. */
export function RedriveTask({ id }: { id: string }) {
  const task = useLoad(() => call("getRedrive", { params: { task_id: id } }), [id]);
  const [error, setError] = useState<unknown>(null);
  const active = !task.data || ACTIVE.has(task.data.status);
  usePoll(task.reload, 1_000, active);
  const data = task.data;
  const cancel = async () => {
    try {
      await call("cancelRedrive", { params: { task_id: id } });
      task.reload();
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <>
      <p>
        <a href={href("redrive")}>← Redrives</a>
      </p>
      <PageHeading>Redrive {id.slice(0, 8)}</PageHeading>
      <ErrorBox error={task.error ?? error} />
      {data && (
        <>
          <div class="progress-block">
            <label for="redrive-progress">
              {data.dry_run ? "Dry run: " : ""}
              <span data-testid="redrive-status" class={`status status-${data.status}`}>
                {data.status}
              </span>{" "}
              — moved <span data-testid="redrive-moved">{data.moved}</span> of{" "}
              <span data-testid="redrive-total">{data.total}</span>
            </label>
            <progress id="redrive-progress" max={Math.max(data.total, 1)} value={data.total === 0 ? 1 : data.moved} />
          </div>
          <dl class="facts">
            <dt>Rate</dt>
            <dd>{rate(data)}</dd>
            <dt>Velocity</dt>
            <dd>at most {data.max_per_second} per second</dd>
            <dt>Skipped</dt>
            <dd>{data.skipped}</dd>
            <dt>Failed</dt>
            <dd>{data.failed}</dd>
            <dt>Pending</dt>
            <dd>{data.pending}</dd>
            <dt>Source queues</dt>
            <dd>{data.source_queues.join(", ") || "—"}</dd>
            <dt>Target queue</dt>
            <dd>{data.target_queue ?? "each message's source queue"}</dd>
            <dt>Started</dt>
            <dd>
              <Time ms={data.created_at} />
            </dd>
            <dt>Finished</dt>
            <dd>
              <Time ms={data.finished_at} />
            </dd>
            <dt>Rounds</dt>
            <dd>{data.round_count}</dd>
            {data.truncated && (
              <>
                <dt>Note</dt>
                <dd>More messages matched than one task takes: start another when this one is done.</dd>
              </>
            )}
            {data.error && (
              <>
                <dt>Error</dt>
                <dd>{data.error}</dd>
              </>
            )}
          </dl>
          {data.status === "running" && (
            <button type="button" class="danger" onClick={() => void cancel()}>
              Cancel redrive
            </button>
          )}
        </>
      )}
    </>
  );
}

interface TaskRef {
  task_id: string;
  at: number;
  queues: string[];
}

function TaskRow({ task }: { task: TaskRef }) {
  const status = useLoad(() => call("getRedrive", { params: { task_id: task.task_id } }), [task.task_id]);
  return (
    <tr>
      <td>
        <a href={href("redrive", task.task_id)} class="mono">
          {task.task_id.slice(0, 8)}
        </a>
      </td>
      <td>
        <Time ms={task.at} />
      </td>
      <td>{status.data?.status ?? (status.error ? "unknown" : "…")}</td>
      <td class="num">{status.data ? `${status.data.moved} / ${status.data.total}` : "—"}</td>
      <td>{status.data?.finished_at ? duration(status.data.finished_at - status.data.created_at) : "—"}</td>
    </tr>
  );
}

/** `#/redrive`: the last tasks per source queue, from the audit trail's `redrive.started` entries. */
export function Redrives() {
  const audit = useLoad(() => call("listAudit", { query: { type: "redrive.started", limit: 1_000 } }), []);
  const byQueue = new Map<string, TaskRef[]>();
  for (const entry of (audit.data?.entries ?? []).toReversed()) {
    const taskId = entry.details.task_id;
    const listed: unknown = entry.details.source_queues;
    const queues = Array.isArray(listed) ? listed.filter((queue): queue is string => typeof queue === "string") : [];
    if (typeof taskId !== "string") continue;
    for (const queue of queues.length > 0 ? queues : ["(none)"]) {
      const list = byQueue.get(queue) ?? [];
      if (list.length < 5) list.push({ task_id: taskId, at: entry.at, queues });
      byQueue.set(queue, list);
    }
  }
  return (
    <>
      <PageHeading>Redrives</PageHeading>
      <p>
        Start a redrive from <a href={href("dlq")}>Dead letters</a> (a filter or a selection, with a velocity).
      </p>
      <ErrorBox error={audit.error} />
      {audit.data && byQueue.size === 0 && <p>No redrive has been started in the last 30 days.</p>}
      {[...byQueue].map(([queue, tasks]) => (
        <section key={queue} aria-labelledby={`q-${queue}`} class="card">
          <h2 id={`q-${queue}`}>{queue}</h2>
          <div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Task</th>
                  <th scope="col">Started</th>
                  <th scope="col">Status</th>
                  <th scope="col" class="num">
                    Moved / total
                  </th>
                  <th scope="col">Took</th>
                </tr>
              </thead>
              <tbody>
                {tasks.map((task) => (
                  <TaskRow key={task.task_id} task={task} />
                ))}
              </tbody>
            </table>
          </div>
        </section>
      ))}
    </>
  );
}
