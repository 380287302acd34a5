/**
 * `projects ls|info`, `do usage <project>`, `enforcement run|restore`: what runs, how much Durable
 * Object time it used, and the enforcement switch.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { z } from "zod";
import { apiFrom } from "../api.ts";
import { intOption, parseCommand, positionalArgs } from "../args.ts";
import { type Command, EXIT_FAILURE, EXIT_OK } from "../command.ts";
import { formatDuration, formatTime, keyValues, print, printJson, table } from "../output.ts";

const ProjectSchema = z.looseObject({
  project_id: z.string(),
  status: z.string(),
  has_durable_objects: z.boolean(),
  do_classes: z.array(z.string()),
  do_migration_tag: z.string().nullable(),
  do_enforcement_status: z.string(),
  current_deploy_id: z.string().nullable(),
  previous_deploy_id: z.string().nullable(),
  created_at: z.number(),
  updated_at: z.number(),
});
type Project = z.infer<typeof ProjectSchema>;

const projectsLs: Command = {
  path: ["projects", "ls"],
  synopsis: "",
  summary: "every project with its Durable Object and enforcement status",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    positionalArgs(positionals, []);
    const { projects } = await apiFrom(values).json(
      "GET",
      "/v1/projects",
      z.looseObject({ projects: z.array(ProjectSchema) }),
    );
    if (values.json) {
      printJson(projects);
      return EXIT_OK;
    }
    print(
      table<Project>(projects, [
        { header: "PROJECT", value: (p) => p.project_id },
        { header: "STATUS", value: (p) => p.status },
        { header: "DO CLASSES", value: (p) => p.do_classes.join(","), max: 40 },
        { header: "DO TAG", value: (p) => p.do_migration_tag },
        { header: "ENFORCEMENT", value: (p) => p.do_enforcement_status },
        { header: "CURRENT DEPLOY", value: (p) => p.current_deploy_id },
        { header: "UPDATED", value: (p) => formatTime(p.updated_at) },
      ]),
    );
    return EXIT_OK;
  },
};

const projectsInfo: Command = {
  path: ["projects", "info"],
  synopsis: "<project>",
  summary: "one project's status",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const p = await apiFrom(values).json("GET", `/v1/projects/${encodeURIComponent(project)}`, ProjectSchema);
    if (values.json) {
      printJson(p);
      return EXIT_OK;
    }
    print(
      keyValues([
        ["project", p.project_id],
        ["status", p.status],
        ["durable objects", p.has_durable_objects ? p.do_classes.join(", ") : "none"],
        ["migration tag", p.do_migration_tag],
        ["enforcement", p.do_enforcement_status],
        ["current deploy", p.current_deploy_id],
        ["previous deploy", p.previous_deploy_id],
        ["created", formatTime(p.created_at)],
        ["updated", formatTime(p.updated_at)],
      ]),
    );
    return EXIT_OK;
  },
};

const UsageSchema = z.looseObject({
  project_id: z.string(),
  window_hours: z.number(),
  wall_ms: z.number(),
  invocations: z.number(),
  as_of: z.number().optional(),
  source: z.string().optional(),
  lag_ms: z.number().optional(),
  threshold_ms: z.number(),
  do_enforcement_status: z.string(),
  removed_bindings: z.array(z.looseObject({ name: z.string(), class_name: z.string() })),
  enforced_at: z.number().nullable(),
});

const doUsage: Command = {
  path: ["do", "usage"],
  synopsis: "<project>",
  summary: "rolling 24 h Durable Object wall time against the enforcement threshold",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const usage = await apiFrom(values).json(
      "GET",
      `/v1/projects/${encodeURIComponent(project)}/do-usage`,
      UsageSchema,
    );
    if (values.json) {
      printJson(usage);
      return EXIT_OK;
    }
    const share =
      usage.threshold_ms > 0 ? ` (${((usage.wall_ms / usage.threshold_ms) * 100).toFixed(1)}% of threshold)` : "";
    print(
      keyValues([
        ["project", usage.project_id],
        [`wall time (${usage.window_hours} h)`, `${formatDuration(usage.wall_ms)}${share}`],
        ["invocations", usage.invocations],
        [
          "as of",
          usage.as_of === undefined
            ? "-"
            : `${formatTime(usage.as_of)} (${usage.source ?? "?"}, may trail by ${formatDuration(usage.lag_ms ?? 0)})`,
        ],
        ["threshold", formatDuration(usage.threshold_ms)],
        ["enforcement", usage.do_enforcement_status],
        ["removed bindings", usage.removed_bindings.map((b) => `${b.name} (${b.class_name})`).join(", ")],
        ["enforced at", formatTime(usage.enforced_at)],
      ]),
    );
    return EXIT_OK;
  },
};

const RunAcceptedSchema = z.looseObject({ run_id: z.string(), status_url: z.string() });
const RunStatusSchema = z.looseObject({
  run_id: z.string(),
  status: z.string(),
  output: z.unknown(),
  error: z.string().nullable(),
});
/** Workflow instance states after which nothing changes any more. */
const FINISHED = new Set(["complete", "errored", "terminated"]);

const enforcementRun: Command = {
  path: ["enforcement", "run"],
  synopsis: "[--threshold-ms <ms>] [--wait]",
  summary: "run the Durable Object usage enforcement check now",
  options: `  --threshold-ms <ms>  a lower threshold for this run only
  --wait               wait for the run to finish and print its outcome
  --timeout <s>        give up waiting after this many seconds (default 120)`,
  async run(args) {
    const { values, positionals } = parseCommand(args, {
      "threshold-ms": { type: "string" },
      wait: { type: "boolean" },
      timeout: { type: "string" },
    });
    positionalArgs(positionals, []);
    const thresholdMs = intOption("threshold-ms", values["threshold-ms"], 0);
    const timeout = intOption("timeout", values.timeout) ?? 120;
    const api = apiFrom(values);
    const run = await api.json("POST", "/v1/admin/enforcement/run", RunAcceptedSchema, {
      body: thresholdMs === undefined ? {} : { threshold_ms: thresholdMs },
    });
    if (!values.wait) {
      if (values.json) printJson(run);
      else print(`enforcement run ${run.run_id} started (status: ${run.status_url})`);
      return EXIT_OK;
    }
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const status = await api.json(
        "GET",
        `/v1/admin/enforcement/runs/${encodeURIComponent(run.run_id)}`,
        RunStatusSchema,
      );
      if (FINISHED.has(status.status) || Date.now() > deadline) {
        if (values.json) printJson(status);
        else {
          print(`enforcement run ${status.run_id}: ${status.status}${status.error ? `: ${status.error}` : ""}`);
          if (status.output !== null && status.output !== undefined) print(JSON.stringify(status.output, null, 2));
        }
        return status.status === "complete" ? EXIT_OK : EXIT_FAILURE;
      }
      await sleep(500);
    }
  },
};

const RestoreSchema = z.looseObject({ project_id: z.string(), restored: z.array(z.string()) });

const enforcementRestore: Command = {
  path: ["enforcement", "restore"],
  synopsis: "<project>",
  summary: "put back the Durable Object bindings enforcement removed",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const answer = await apiFrom(values).json(
      "POST",
      `/v1/projects/${encodeURIComponent(project)}/enforcement/restore`,
      RestoreSchema,
      { body: {} },
    );
    if (values.json) printJson(answer);
    else
      print(
        `${answer.project_id}: restored ${answer.restored.length > 0 ? answer.restored.join(", ") : "nothing (bindings were present)"}`,
      );
    return EXIT_OK;
  },
};

export const PROJECT_COMMANDS: readonly Command[] = [
  projectsLs,
  projectsInfo,
  doUsage,
  enforcementRun,
  enforcementRestore,
];
