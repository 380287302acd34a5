/** Dead letters: the archive with every filter of the API, counts, one message, delete, purge, redrive. */
import { useState } from "preact/hooks";
import { type CallOutput, call } from "./api.ts";
import { ErrorBox, Notice, PageHeading, Pager, Time, href, inputValue, localToIso, useLoad, usePages } from "./ui.tsx";

const QUEUES = ["shipyard-telemetry", "shipyard-counters", "shipyard-deploys"];

export interface Filter {
  queue: string;
  type: string;
  project_id: string;
  reason: string;
  since: string;
  until: string;
}

const EMPTY: Filter = { queue: "", type: "", project_id: "", reason: "", since: "", until: "" };

/** The filter in the API's terms (empty fields left out; local times as ISO 8601). */
function apiFilter(filter: Filter): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ["queue", "type", "project_id", "reason"] as const) if (filter[name]) out[name] = filter[name];
  const since = localToIso(filter.since);
  const until = localToIso(filter.until);
  if (since) out.since = since;
  if (until) out.until = until;
  return out;
}

function FilterForm({ value, onApply }: { value: Filter; onApply: (filter: Filter) => void }) {
  const [draft, setDraft] = useState(value);
  const field = (name: keyof Filter) => ({
    id: `filter-${name}`,
    name,
    value: draft[name],
    onInput: (event: Event) => setDraft({ ...draft, [name]: inputValue(event) }),
  });
  return (
    <form
      class="filters"
      aria-label="Dead-letter filters"
      onSubmit={(event) => {
        event.preventDefault();
        onApply(draft);
      }}
    >
      <div class="field">
        <label for="filter-queue">Source queue</label>
        <select {...field("queue")}>
          <option value="">any</option>
          {QUEUES.map((queue) => (
            <option key={queue} value={queue}>
              {queue}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for="filter-type">Envelope type</label>
        <input {...field("type")} placeholder="telemetry.events" />
      </div>
      <div class="field">
        <label for="filter-project_id">Project</label>
        <input {...field("project_id")} />
      </div>
      <div class="field">
        <label for="filter-reason">Reason contains</label>
        <input {...field("reason")} type="search" />
      </div>
      <div class="field">
        <label for="filter-since">Last failure from</label>
        <input {...field("since")} type="datetime-local" />
      </div>
      <div class="field">
        <label for="filter-until">Last failure before</label>
        <input {...field("until")} type="datetime-local" />
      </div>
      <div class="actions">
        <button type="submit">Apply filters</button>
        <button
          type="button"
          class="secondary"
          onClick={() => {
            setDraft(EMPTY);
            onApply(EMPTY);
          }}
        >
          Clear
        </button>
      </div>
    </form>
  );
}

function Counts({ stats, onReason }: { stats: CallOutput<"getDeadLetterStats">; onReason: (reason: string) => void }) {
  return (
    <div class="cards">
      <section aria-labelledby="by-queue" class="card">
        <h2 id="by-queue">Per source queue</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">Queue</th>
              <th scope="col" class="num">
                Messages
              </th>
            </tr>
          </thead>
          <tbody>
            {stats.by_queue.map((row) => (
              <tr key={row.queue}>
                <td>{row.queue}</td>
                <td class="num">{row.count}</td>
              </tr>
            ))}
            {stats.by_queue.length === 0 && (
              <tr>
                <td colSpan={2}>No dead letters match.</td>
              </tr>
            )}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="by-reason" class="card">
        <h2 id="by-reason">Per failure reason</h2>
        <ul class="reasons">
          {stats.by_reason.map((row) => (
            <li key={row.reason}>
              <button type="button" class="link" onClick={() => onReason(row.reason)} title={row.reason}>
                <span class="count">{row.count}</span> <span class="reason">{row.reason}</span>
              </button>
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}

function RedriveControls({ filter, selected }: { filter: Filter; selected: string[] }) {
  const [velocity, setVelocity] = useState(50);
  const [error, setError] = useState<unknown>(null);
  const start = async (body: Record<string, unknown>) => {
    setError(null);
    try {
      const task = await call("startRedrive", { body: { ...body, max_per_second: velocity } });
      location.hash = href("redrive", task.task_id);
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <section aria-labelledby="redrive-heading" class="card">
      <h2 id="redrive-heading">Redrive</h2>
      <div class="row">
        <label for="velocity">Messages per second</label>
        <input
          id="velocity"
          type="number"
          min={1}
          max={500}
          value={velocity}
          onInput={(event) => setVelocity(Number(event.currentTarget.value))}
        />
        <button type="button" disabled={selected.length === 0} onClick={() => void start({ ids: selected })}>
          Redrive selected ({selected.length})
        </button>
        <button type="button" onClick={() => void start({ filter: apiFilter(filter) })}>
          Redrive all matching
        </button>
      </div>
      <ErrorBox error={error} />
    </section>
  );
}

function PurgeControls({ filter, onPurged }: { filter: Filter; onPurged: () => void }) {
  const [preview, setPreview] = useState<CallOutput<"purgeDeadLetters"> | null>(null);
  const [result, setResult] = useState<CallOutput<"purgeDeadLetters"> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const scope = apiFilter(filter);
  const body = Object.keys(scope).length > 0 ? { filter: scope } : { all: true as const };
  const run = async (dryRun: boolean) => {
    setError(null);
    try {
      const answer = await call("purgeDeadLetters", { body: { ...body, dry_run: dryRun } });
      if (dryRun) setPreview(answer);
      else {
        setPreview(null);
        setResult(answer);
        onPurged();
      }
    } catch (caught) {
      setError(caught);
    }
  };
  return (
    <section aria-labelledby="purge-heading" class="card">
      <h2 id="purge-heading">Purge</h2>
      <p>
        Deletes every archived message matching the filters{"all" in body ? " (no filter: the whole archive)" : ""}.
      </p>
      <div class="row">
        <button type="button" class="secondary" onClick={() => void run(true)}>
          Preview purge
        </button>
        {preview && (
          <button type="button" class="danger" disabled={preview.matched === 0} onClick={() => void run(false)}>
            Delete {preview.matched} message{preview.matched === 1 ? "" : "s"}
          </button>
        )}
      </div>
      {preview && <Notice>Dry run: {preview.matched} archived messages would be deleted.</Notice>}
      {result && (
        <Notice>
          Purged {result.purged}
          {result.more ? "; more match: purge again" : ""}.
        </Notice>
      )}
      <ErrorBox error={error} />
    </section>
  );
}

/** `#/dlq`: the list with filters, counts, paging, selection, redrive and purge. */
export function DeadLetters() {
  const [filter, setFilter] = useState<Filter>(EMPTY);
  const [limit, setLimit] = useState(50);
  const pages = usePages();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const cursor = pages.cursor;
  const list = useLoad(
    () => call("listDeadLetters", { query: { ...apiFilter(filter), limit, cursor } }),
    [filter, limit, cursor],
  );
  const stats = useLoad(() => call("getDeadLetterStats", { query: apiFilter(filter) }), [filter]);
  const apply = (next: Filter) => {
    setFilter(next);
    pages.reset();
    setSelected(new Set());
  };
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const items = list.data?.items ?? [];
  return (
    <>
      <PageHeading>Dead letters</PageHeading>
      <FilterForm key={JSON.stringify(filter)} value={filter} onApply={apply} />
      {stats.data && <Counts stats={stats.data} onReason={(reason) => apply({ ...filter, reason })} />}
      <ErrorBox error={list.error ?? stats.error} />
      <section aria-labelledby="list-heading">
        <h2 id="list-heading">
          Messages{stats.data ? ` (${stats.data.total} matching)` : ""}
          {list.loading && <span class="muted"> loading…</span>}
        </h2>
        <div class="scroll">
          <table class="list">
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select every message on this page"
                    checked={items.length > 0 && items.every((item) => selected.has(item.id))}
                    onChange={(event) =>
                      setSelected(event.currentTarget.checked ? new Set(items.map((item) => item.id)) : new Set())
                    }
                  />
                </th>
                <th scope="col">Message</th>
                <th scope="col">Queue</th>
                <th scope="col">Type</th>
                <th scope="col">Project</th>
                <th scope="col" class="num">
                  Attempts
                </th>
                <th scope="col">Reason</th>
                <th scope="col">Last failure</th>
              </tr>
            </thead>
            <tbody>
              {items.map((item) => (
                <tr key={item.id}>
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select ${item.id}`}
                      checked={selected.has(item.id)}
                      onChange={() => toggle(item.id)}
                    />
                  </td>
                  <td>
                    <a href={href("dlq", item.id)} class="mono">
                      {item.id.slice(0, 12)}
                    </a>
                  </td>
                  <td>{item.source_queue}</td>
                  <td>{item.envelope_type ?? "—"}</td>
                  <td>{item.project_id ?? "—"}</td>
                  <td class="num">{item.attempts}</td>
                  <td class="reason-cell" title={item.last_error}>
                    {item.last_error}
                  </td>
                  <td>
                    <Time ms={item.last_failure_at} />
                  </td>
                </tr>
              ))}
              {items.length === 0 && !list.loading && (
                <tr>
                  <td colSpan={8}>No dead letters on this page.</td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
        <Pager pages={pages} next={list.data?.next_cursor} label="Pages">
          <label for="page-size">Page size</label>
          <select id="page-size" value={limit} onChange={(event) => setLimit(Number(event.currentTarget.value))}>
            {[10, 25, 50, 100].map((size) => (
              <option key={size} value={size}>
                {size}
              </option>
            ))}
          </select>
          <button type="button" class="secondary" onClick={() => (list.reload(), stats.reload())}>
            Refresh
          </button>
        </Pager>
      </section>
      <RedriveControls filter={filter} selected={[...selected]} />
      <PurgeControls filter={filter} onPurged={() => (list.reload(), stats.reload())} />
    </>
  );
}

/** `#/dlq/:id`: one message with its body, attempts, failure times and reason; delete or redrive it. */
export function DeadLetterDetail({ id }: { id: string }) {
  const message = useLoad(() => call("getDeadLetter", { params: { id } }), [id]);
  const [error, setError] = useState<unknown>(null);
  const [confirming, setConfirming] = useState(false);
  const [deleted, setDeleted] = useState(false);
  const remove = async () => {
    try {
      await call("deleteDeadLetter", { params: { id } });
      setDeleted(true);
    } catch (caught) {
      setError(caught);
    }
  };
  const redrive = async () => {
    try {
      const task = await call("startRedrive", { body: { ids: [id] } });
      location.hash = href("redrive", task.task_id);
    } catch (caught) {
      setError(caught);
    }
  };
  const data = message.data;
  return (
    <>
      <p>
        <a href={href("dlq")}>← Dead letters</a>
      </p>
      <PageHeading>Dead letter {id}</PageHeading>
      <ErrorBox error={message.error ?? error} />
      {deleted && <Notice>Deleted. It is gone from the archive.</Notice>}
      {data && !deleted && (
        <>
          <dl class="facts">
            <dt>Source queue</dt>
            <dd>{data.source_queue}</dd>
            <dt>Envelope type</dt>
            <dd>{data.envelope_type ?? "—"}</dd>
            <dt>Project</dt>
            <dd>{data.project_id ?? "—"}</dd>
            <dt>Attempts</dt>
            <dd>{data.attempts}</dd>
            <dt>First failure</dt>
            <dd>
              <Time ms={data.first_failure_at} />
            </dd>
            <dt>Last failure</dt>
            <dd>
              <Time ms={data.last_failure_at} />
            </dd>
            <dt>Archived</dt>
            <dd>
              <Time ms={data.archived_at} />
            </dd>
            <dt>Reason</dt>
            <dd class="reason-text">{data.last_error}</dd>
            <dt>Queue message id</dt>
            <dd class="mono">{data.message_id}</dd>
          </dl>
          <h2>Body</h2>
          <pre class="body" tabIndex={0} aria-label="Message body">
            {JSON.stringify(data.body, null, 2)}
          </pre>
          <div class="row">
            <button type="button" onClick={() => void redrive()}>
              Redrive this message
            </button>
            {!confirming ? (
              <button type="button" class="danger" onClick={() => setConfirming(true)}>
                Delete…
              </button>
            ) : (
              <>
                <span>Delete for good?</span>
                <button type="button" class="danger" onClick={() => void remove()}>
                  Yes, delete
                </button>
                <button type="button" class="secondary" onClick={() => setConfirming(false)}>
                  Keep it
                </button>
              </>
            )}
          </div>
        </>
      )}
      {message.loading && !data && <p class="muted">Loading…</p>}
    </>
  );
}
