/** `audit ls` (a table for people) and `audit export` (every page, JSON or CSV, to stdout or a file). */
import { writeFile } from "node:fs/promises";
import type { AuditEntryBody as Entry } from "../../schemas/audit.schema.ts";
import { type ApiClient, apiFrom, toApiError } from "../api.ts";
import { UsageError, intOption, parseCommand, positionalArgs, timeOption } from "../args.ts";
import { type Command, EXIT_OK } from "../command.ts";
import { formatTime, note, print, printJson, table } from "../output.ts";

const FILTER_OPTIONS = {
  from: { type: "string" },
  to: { type: "string" },
  type: { type: "string" },
  project: { type: "string" },
} as const;

const FILTER_HELP = `  --from <time>    from (inclusive): epoch ms, ISO 8601, or 30m / 24h / 7d ago (default: 30 days ago)
  --to <time>      to (exclusive; default now)
  --type <types>   comma-separated types; deploy.* matches every deploy. type
  --project <id>   one project's entries`;

function queryOf(values: { from?: string; to?: string; type?: string; project?: string }) {
  return {
    from: timeOption("from", values.from),
    to: timeOption("to", values.to),
    type: values.type,
    project_id: values.project,
  };
}

/** Page size of an export: the endpoint's maximum. */
const EXPORT_PAGE = 10_000;

/** Every CSV page concatenated: later pages come without a header row. */
async function exportCsv(api: ApiClient, query: ReturnType<typeof queryOf>): Promise<string> {
  let csv = "";
  let cursor: string | undefined;
  do {
    const answer = await api.raw("listAudit", {
      query: { ...query, format: "csv", limit: EXPORT_PAGE, cursor },
      headers: { accept: "text/csv" },
    });
    if (answer.status !== 200) {
      let body: unknown;
      try {
        body = JSON.parse(answer.text);
      } catch {
        body = undefined;
      }
      throw toApiError(answer.status, body, answer.text);
    }
    csv += answer.text;
    cursor = answer.headers.get("x-next-cursor") ?? undefined;
  } while (cursor !== undefined);
  return csv;
}

async function exportJson(api: ApiClient, query: ReturnType<typeof queryOf>): Promise<Entry[]> {
  const entries: Entry[] = [];
  let cursor: string | undefined;
  do {
    const page = await api.call("listAudit", {
      query: { ...query, format: "json", limit: EXPORT_PAGE, cursor },
    });
    entries.push(...page.entries);
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  return entries;
}

const auditExport: Command = {
  path: ["audit", "export"],
  synopsis: "[--format csv|json] [--from <time>] [--to <time>] [--type <types>] [--project <id>] [--output <file>]",
  summary: "export the audit trail (every page) as CSV or JSON",
  options: `  --format <f>     csv or json (default csv)
${FILTER_HELP}
  --output <file>  write to a file instead of stdout`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      ...FILTER_OPTIONS,
      format: { type: "string" },
      output: { type: "string", short: "o" },
    });
    positionalArgs(positionals, []);
    const format = values.format ?? "csv";
    if (format !== "csv" && format !== "json") throw new UsageError(`--format must be csv or json, got ${format}`);
    const api = apiFrom(values);
    const query = queryOf(values);
    let text: string;
    let count: number;
    if (format === "csv") {
      text = await exportCsv(api, query);
      count = Math.max(0, text.split("\r\n").length - 2);
    } else {
      const entries = await exportJson(api, query);
      text = `${JSON.stringify({ entries }, null, 2)}\n`;
      count = entries.length;
    }
    if (values.output === undefined) process.stdout.write(text);
    else {
      await writeFile(values.output, text);
      note(`wrote ${count} audit entries to ${values.output}`);
    }
    return EXIT_OK;
  },
};

const auditLs: Command = {
  path: ["audit", "ls"],
  synopsis: "[--from <time>] [--to <time>] [--type <types>] [--project <id>] [--limit <n>]",
  summary: "recent audit entries as a table (oldest first)",
  options: `${FILTER_HELP}
  --limit <n>      at most this many entries, the oldest in range (default 100)`,
  async run(args) {
    const { values, positionals } = parseCommand(args, { ...FILTER_OPTIONS, limit: { type: "string" } });
    positionalArgs(positionals, []);
    const limit = intOption("limit", values.limit, 1, 10_000) ?? 100;
    const page = await apiFrom(values).call("listAudit", {
      query: { ...queryOf(values), limit },
    });
    if (values.json) {
      printJson(page);
      return EXIT_OK;
    }
    print(
      table<Entry>(page.entries, [
        { header: "TIME", value: (e) => formatTime(e.at) },
        { header: "TYPE", value: (e) => e.type },
        { header: "ACTOR", value: (e) => e.actor },
        { header: "PROJECT", value: (e) => e.project_id },
        { header: "DETAILS", value: (e) => JSON.stringify(e.details), max: 80 },
      ]),
    );
    if (page.next_cursor) note(`more entries: narrow --from/--to, or use audit export`);
    return EXIT_OK;
  },
};

export const AUDIT_COMMANDS: readonly Command[] = [auditLs, auditExport];
