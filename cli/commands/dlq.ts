/**
 * `dlq ls|show|redrive|status|cancel|purge`: the dead-letter archive. A redrive shows a progress
 * bar while its task runs; Ctrl-C asks the task to stop (what moved stays moved).
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  type DeadLetter,
  type DlqFilterInput,
  SourceQueueSchema,
  type RedriveStatus,
} from "../../schemas/dlq.schema.ts";
import { type ApiClient, apiFrom } from "../api.ts";
import { UsageError, intOption, parseCommand, positionalArgs, timeOption } from "../args.ts";
import { type Command, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "../command.ts";
import { ProgressBar, confirm, formatTime, interactive, keyValues, note, print, printJson, table } from "../output.ts";

const FILTER_OPTIONS = {
  queue: { type: "string" },
  type: { type: "string" },
  project: { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
} as const;

const FILTER_HELP = `  --queue <queue>  source queue (shipyard-telemetry, shipyard-counters, shipyard-deploys; -dlq works too)
  --type <type>    envelope type, e.g. telemetry.events
  --project <id>   project id
  --since <time>   last failure at or after (epoch ms, ISO 8601, or 30m / 24h / 7d ago)
  --until <time>   last failure before`;

interface FilterValues {
  queue?: string;
  type?: string;
  project?: string;
  since?: string;
  until?: string;
}

/** The contract's filter object from the options (only what was given). */
function filterOf(values: FilterValues): DlqFilterInput {
  const filter: DlqFilterInput = {};
  if (values.queue !== undefined) filter.queue = values.queue;
  if (values.type !== undefined) filter.type = values.type;
  if (values.project !== undefined) filter.project_id = values.project;
  const since = timeOption("since", values.since);
  const until = timeOption("until", values.until);
  if (since !== undefined) filter.since = since;
  if (until !== undefined) filter.until = until;
  return filter;
}

/** `--target-queue`: one of the contract's source queues (a redrive never feeds a dead-letter queue). */
function queueOption(value: string) {
  const queue = SourceQueueSchema.safeParse(value);
  if (!queue.success) {
    throw new UsageError(`--target-queue: no source queue ${value}; one of ${SourceQueueSchema.options.join(", ")}`);
  }
  return queue.data;
}

const dlqLs: Command = {
  path: ["dlq", "ls"],
  synopsis: "[filters] [--limit <n>] [--cursor <c>] [--all]",
  summary: "list dead-lettered messages, newest first",
  options: `${FILTER_HELP}
  --limit <n>      page size, 1..100 (default 50)
  --cursor <c>     the next page (printed after a full page)
  --all            follow every page`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      ...FILTER_OPTIONS,
      limit: { type: "string" },
      cursor: { type: "string" },
      all: { type: "boolean" },
    });
    positionalArgs(positionals, []);
    const api = apiFrom(values);
    const query = { ...filterOf(values), limit: intOption("limit", values.limit, 1, 100) };
    const items: DeadLetter[] = [];
    let cursor = values.cursor;
    do {
      const page = await api.call("listDeadLetters", { query: { ...query, cursor } });
      items.push(...page.items);
      cursor = page.next_cursor ?? undefined;
    } while (values.all && cursor !== undefined);
    if (values.json) {
      printJson({ items, next_cursor: cursor ?? null });
      return EXIT_OK;
    }
    print(
      table<DeadLetter>(items, [
        { header: "ID", value: (m) => m.id },
        { header: "QUEUE", value: (m) => m.source_queue },
        { header: "TYPE", value: (m) => m.envelope_type },
        { header: "PROJECT", value: (m) => m.project_id },
        { header: "ATTEMPTS", value: (m) => m.attempts },
        { header: "LAST FAILURE", value: (m) => formatTime(m.last_failure_at) },
        { header: "LAST ERROR", value: (m) => m.last_error, max: 60 },
      ]),
    );
    if (cursor !== undefined) note(`more: shipyard dlq ls --cursor ${cursor} (or --all)`);
    return EXIT_OK;
  },
};

const dlqShow: Command = {
  path: ["dlq", "show"],
  synopsis: "<id>",
  summary: "one dead-lettered message with its error and body",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [id = ""] = positionalArgs(positionals, ["id"]);
    const message = await apiFrom(values).call("getDeadLetter", { params: { id } });
    if (values.json) {
      printJson(message);
      return EXIT_OK;
    }
    print(
      keyValues([
        ["id", message.id],
        ["queue", message.source_queue],
        ["message id", message.message_id],
        ["type", message.envelope_type],
        ["project", message.project_id],
        ["attempts", message.attempts],
        ["first failure", formatTime(message.first_failure_at)],
        ["last failure", formatTime(message.last_failure_at)],
        ["last error", message.last_error],
      ]),
    );
    print("body:");
    print(JSON.stringify(message.body, null, 2));
    return EXIT_OK;
  },
};

type Task = RedriveStatus;
const RUNNING = new Set(["running", "cancelling"]);

function summary(task: Task): string {
  const parts = [`${task.moved}/${task.total} moved`];
  if (task.skipped) parts.push(`${task.skipped} skipped`);
  if (task.failed) parts.push(`${task.failed} failed`);
  return `redrive ${task.task_id} ${task.status}${task.dry_run ? " (dry run)" : ""}: ${parts.join(", ")}${task.error ? `: ${task.error}` : ""}`;
}

/**
 * Polls the task with a progress bar until it leaves running/cancelling. Ctrl-C once asks the
 * task to cancel and keeps following it; twice leaves at once (the task keeps its state).
 */
async function followTask(api: ApiClient, taskId: string, json: boolean): Promise<number> {
  const bar = json ? null : new ProgressBar();
  let interrupted = 0;
  const onSigint = () => {
    interrupted++;
    if (interrupted > 1) process.exit(EXIT_FAILURE);
    note(`\ncancelling redrive ${taskId} (Ctrl-C again to stop watching)`);
    api.call("cancelRedrive", { params: { task_id: taskId } }).catch((error: unknown) => {
      note(`cancel failed: ${error instanceof Error ? error.message : String(error)}`);
    });
  };
  process.on("SIGINT", onSigint);
  try {
    for (;;) {
      const task = await api.call("getRedrive", { params: { task_id: taskId } });
      bar?.update(task.moved + (task.skipped ?? 0) + (task.failed ?? 0), task.total, task.status);
      if (!RUNNING.has(task.status)) {
        bar?.done();
        if (json) printJson(task);
        else print(summary(task));
        if (task.truncated) note("more messages matched than one task takes: run the redrive again after this one");
        return task.status === "completed" && !task.failed ? EXIT_OK : EXIT_FAILURE;
      }
      await sleep(500);
    }
  } finally {
    process.off("SIGINT", onSigint);
  }
}

const dlqRedrive: Command = {
  path: ["dlq", "redrive"],
  synopsis: "[filters] [--id <id>…] [--max-per-second <n>] [--target-queue <q>] [--dry-run] [--detach]",
  summary: "move archived messages back to their queue, with a progress bar",
  options: `${FILTER_HELP}
  --id <id>              archive id (repeatable; combined with the filters)
  --max-per-second <n>   velocity, 1..500 (default: the server's, 50)
  --target-queue <q>     send to this queue instead of each message's source queue
  --dry-run              count what would move; move nothing
  --detach               print the task id and return at once`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      ...FILTER_OPTIONS,
      id: { type: "string", multiple: true },
      "max-per-second": { type: "string" },
      "target-queue": { type: "string" },
      "dry-run": { type: "boolean" },
      detach: { type: "boolean" },
    });
    positionalArgs(positionals, []);
    const api = apiFrom(values);
    const filter = filterOf(values);
    const maxPerSecond = intOption("max-per-second", values["max-per-second"], 1, 500);
    const body = {
      ...(Object.keys(filter).length > 0 ? { filter } : {}),
      ...(values.id ? { ids: values.id } : {}),
      ...(maxPerSecond === undefined ? {} : { max_per_second: maxPerSecond }),
      ...(values["target-queue"] === undefined ? {} : { target_queue: queueOption(values["target-queue"]) }),
      dry_run: values["dry-run"] === true,
    };
    const started = await api.call("startRedrive", { body });
    if (values.detach) {
      if (values.json) printJson(started);
      else
        print(`redrive ${started.task_id} started${started.total === undefined ? "" : ` (${started.total} messages)`}`);
      return EXIT_OK;
    }
    if (!values.json) note(`redrive ${started.task_id} started`);
    return followTask(api, started.task_id, values.json === true);
  },
};

const dlqStatus: Command = {
  path: ["dlq", "status"],
  synopsis: "<task_id> [--watch]",
  summary: "a redrive task's status (--watch: progress bar until it ends)",
  options: "  --watch          follow the task until it ends",
  async run(args) {
    const { values, positionals } = parseCommand(args, { watch: { type: "boolean" } });
    const [taskId = ""] = positionalArgs(positionals, ["task_id"]);
    const api = apiFrom(values);
    if (values.watch) return followTask(api, taskId, values.json === true);
    const task = await api.call("getRedrive", { params: { task_id: taskId } });
    if (values.json) printJson(task);
    else print(summary(task));
    return EXIT_OK;
  },
};

const dlqCancel: Command = {
  path: ["dlq", "cancel"],
  synopsis: "<task_id>",
  summary: "stop a running redrive (what moved stays moved)",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [taskId = ""] = positionalArgs(positionals, ["task_id"]);
    const task = await apiFrom(values).call("cancelRedrive", { params: { task_id: taskId } });
    if (values.json) printJson(task);
    else print(summary(task));
    return EXIT_OK;
  },
};

const dlqPurge: Command = {
  path: ["dlq", "purge"],
  synopsis: "[filters] [--id <id>…] [--all] [--dry-run] [--yes]",
  summary: "delete archived messages for good (counts first, asks y/N)",
  options: `${FILTER_HELP}
  --id <id>        archive id (repeatable)
  --all            the whole archive (required when there is no filter and no id)
  --dry-run        count only
  --yes            do not ask (scripts); without it a non-interactive run exits 2`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      ...FILTER_OPTIONS,
      id: { type: "string", multiple: true },
      all: { type: "boolean" },
      "dry-run": { type: "boolean" },
      yes: { type: "boolean" },
    });
    positionalArgs(positionals, []);
    const filter = filterOf(values);
    if (Object.keys(filter).length === 0 && !values.id && !values.all && !values["dry-run"]) {
      throw new UsageError("name a filter or --id, or pass --all to purge the whole archive");
    }
    const api = apiFrom(values);
    const body = {
      ...(Object.keys(filter).length > 0 ? { filter } : {}),
      ...(values.id ? { ids: values.id } : {}),
      ...(values.all ? { all: true as const } : {}),
    };
    const counted = await api.call("purgeDeadLetters", { body: { ...body, dry_run: true } });
    if (values["dry-run"]) {
      if (values.json) printJson(counted);
      else print(`${counted.matched} archived messages match; nothing deleted (dry run)`);
      return EXIT_OK;
    }
    if (counted.matched === 0) {
      if (values.json) printJson(counted);
      else print("no archived message matches; nothing to purge");
      return EXIT_OK;
    }
    if (!values.yes) {
      if (!interactive()) {
        note(`refusing to purge ${counted.matched} messages without confirmation: not a terminal; pass --yes`);
        return EXIT_USAGE;
      }
      if (!(await confirm(`Delete ${counted.matched} archived messages for good?`))) {
        note("aborted; nothing was deleted");
        return EXIT_FAILURE;
      }
    }
    const purged = await api.call("purgeDeadLetters", { body: { ...body, dry_run: false } });
    if (values.json) printJson(purged);
    else print(`purged ${purged.purged} archived messages${purged.more ? " (more match: run again)" : ""}`);
    return EXIT_OK;
  },
};

export const DLQ_COMMANDS: readonly Command[] = [dlqLs, dlqShow, dlqRedrive, dlqStatus, dlqCancel, dlqPurge];
