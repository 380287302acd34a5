/** Pipeline: live metrics of `/v1/admin/metrics`, and the audit log with filters and CSV export. */
import { useState } from "preact/hooks";
import { call, urlOf } from "./api.ts";
import { ErrorBox, PageHeading, Pager, Time, inputValue, localToIso, useLoad, usePages, usePoll } from "./ui.tsx";

/** Buffered rows of each shard as bars (SVG attributes only, for the CSP). */
function ShardBars({ values, label }: { values: number[]; label: string }) {
  const max = Math.max(1, ...values);
  const width = 8;
  return (
    <svg
      class="shards"
      viewBox={`0 0 ${values.length * width} 40`}
      role="img"
      aria-label={`${label}: ${values.join(", ")}`}
      // Bars only, no text: stretching them to the card's width distorts nothing.
      preserveAspectRatio="none"
    >
      {values.map((value, index) => (
        <g key={index}>
          <rect x={index * width + 1} width={width - 2} y={0} height={40} class="chart-track" />
          <rect
            x={index * width + 1}
            width={width - 2}
            y={40 - (value / max) * 40}
            height={(value / max) * 40}
            class="chart-bar"
          >
            <title>
              shard {index}: {value}
            </title>
          </rect>
        </g>
      ))}
    </svg>
  );
}

function MetricsPanel() {
  const metrics = useLoad(() => call("getMetrics"), []);
  const [live, setLive] = useState(true);
  usePoll(metrics.reload, 2_000, live);
  const data = metrics.data;
  return (
    <section aria-labelledby="metrics-heading">
      <h2 id="metrics-heading">Metrics</h2>
      <label class="row">
        <input type="checkbox" checked={live} onChange={(event) => setLive(event.currentTarget.checked)} /> Refresh
        every 2 s
      </label>
      <ErrorBox error={metrics.error} />
      {data && (
        <div class="cards">
          <section class="card" aria-labelledby="m-telemetry">
            <h3 id="m-telemetry">Telemetry</h3>
            <dl class="facts">
              <dt>Buffered rows</dt>
              <dd data-testid="metric-buffered">{data.telemetry.buffered}</dd>
              <dt>Flush failures</dt>
              <dd>{data.telemetry.flush_failures}</dd>
              <dt>D1 round trips</dt>
              <dd>{data.telemetry.d1.round_trips}</dd>
              <dt>D1 rows written</dt>
              <dd>{data.telemetry.d1.rows_written}</dd>
              <dt>Shard RPCs</dt>
              <dd>{data.telemetry.shard_rpcs}</dd>
            </dl>
            <p>Buffered rows per shard ({data.telemetry.shard_count} shards)</p>
            <ShardBars values={data.telemetry.buffered_by_shard} label="Buffered rows per telemetry shard" />
          </section>
          <section class="card" aria-labelledby="m-counters">
            <h3 id="m-counters">Counters</h3>
            <dl class="facts">
              <dt>Held increments</dt>
              <dd>{data.counters.held}</dd>
              <dt>Flush failures</dt>
              <dd>{data.counters.flush_failures}</dd>
              <dt>D1 round trips</dt>
              <dd>{data.counters.d1.round_trips}</dd>
              <dt>D1 rows written</dt>
              <dd>{data.counters.d1.rows_written}</dd>
            </dl>
            <p>Held increments per shard</p>
            <ShardBars values={data.counters.held_by_shard} label="Held increments per counter shard" />
          </section>
          <section class="card" aria-labelledby="m-limits">
            <h3 id="m-limits">Rate limits</h3>
            <dl class="facts">
              <dt>Checks</dt>
              <dd>{data.rate_limits.checks}</dd>
              <dt>Rows read</dt>
              <dd>{data.rate_limits.rows_read}</dd>
              <dt>Rows written</dt>
              <dd>{data.rate_limits.rows_written}</dd>
            </dl>
          </section>
        </div>
      )}
    </section>
  );
}

interface AuditFilter {
  from: string;
  to: string;
  type: string;
  project_id: string;
}

/** The filter in the API's terms: an empty field is left out (the API refuses an empty `type`). */
function auditQuery(filter: AuditFilter) {
  return {
    from: localToIso(filter.from),
    to: localToIso(filter.to),
    type: filter.type || undefined,
    project_id: filter.project_id || undefined,
  };
}

/** `datetime-local` value of 24 hours ago: the log opens on the last day, oldest first. */
function dayAgo(): string {
  const local = new Date(Date.now() - 86_400_000 - new Date().getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

function AuditPanel() {
  const [filter, setFilter] = useState<AuditFilter>(() => ({ from: dayAgo(), to: "", type: "", project_id: "" }));
  const [draft, setDraft] = useState(filter);
  const pages = usePages();
  const cursor = pages.cursor;
  const log = useLoad(
    () => call("listAudit", { query: { ...auditQuery(filter), limit: 100, cursor } }),
    [filter, cursor],
  );
  const field = (name: keyof AuditFilter) => ({
    id: `audit-${name}`,
    value: draft[name],
    onInput: (event: Event) => setDraft({ ...draft, [name]: inputValue(event) }),
  });
  // A plain link: the browser sends the session cookie with it and saves the attachment.
  const csv = urlOf("listAudit", { query: { ...auditQuery(filter), format: "csv", limit: 10_000 } });
  return (
    <section aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit log</h2>
      <form
        class="filters"
        aria-label="Audit filters"
        onSubmit={(event) => {
          event.preventDefault();
          setFilter(draft);
          pages.reset();
        }}
      >
        <div class="field">
          <label for="audit-from">From</label>
          <input {...field("from")} type="datetime-local" />
        </div>
        <div class="field">
          <label for="audit-to">To</label>
          <input {...field("to")} type="datetime-local" />
        </div>
        <div class="field">
          <label for="audit-type">Types</label>
          <input {...field("type")} placeholder="deploy.*,redrive.started" />
        </div>
        <div class="field">
          <label for="audit-project_id">Project</label>
          <input {...field("project_id")} />
        </div>
        <div class="actions">
          <button type="submit">Apply filters</button>
          <a class="button secondary" href={csv} download="shipyard-audit.csv">
            Export CSV
          </a>
        </div>
      </form>
      <ErrorBox error={log.error} />
      <div class="scroll">
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Type</th>
              <th scope="col">Actor</th>
              <th scope="col">Project</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {(log.data?.entries ?? []).map((entry) => (
              <tr key={entry.id}>
                <td>
                  <Time ms={entry.at} />
                </td>
                <td>{entry.type}</td>
                <td class="mono">{entry.actor}</td>
                <td>{entry.project_id ?? "—"}</td>
                <td class="details-cell mono">{JSON.stringify(entry.details)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager pages={pages} next={log.data?.next_cursor} label="Audit pages" />
    </section>
  );
}

/** `#/pipeline`. */
export function Pipeline() {
  return (
    <>
      <PageHeading>Pipeline</PageHeading>
      <MetricsPanel />
      <AuditPanel />
    </>
  );
}
