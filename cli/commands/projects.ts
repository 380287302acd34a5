/**
 * `projects ls|info`, `do usage <project>`, `enforcement run|restore`: what runs, how much Durable
 * Object time it used, and the enforcement switch.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { ProjectStatus } from "../../schemas/deploy.schema.ts";
import { apiFrom } from "../api.ts";
import { intOption, parseCommand, positionalArgs } from "../args.ts";
import { type Command, EXIT_FAILURE, EXIT_OK } from "../command.ts";
import { formatDuration, formatTime, keyValues, note, print, printJson, table } from "../output.ts";

type Project = ProjectStatus;

const projectsLs: Command = {
  path: ["projects", "ls"],
  synopsis: "",
  summary: "every project with its Durable Object and enforcement status",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    positionalArgs(positionals, []);
    const { projects } = await apiFrom(values).call("listProjects");
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
    const p = await apiFrom(values).call("getProject", { params: { id: project } });
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

const projectsRotateSecret: Command = {
  path: ["projects", "rotate-secret"],
  synopsis: "<project>",
  summary: "replace the project's deploy signing secret (printed once; the old one stops working)",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const rotated = await apiFrom(values).call("rotateDeploySecret", { params: { id: project } });
    if (values.json) {
      printJson(rotated);
      return EXIT_OK;
    }
    note(
      `project ${rotated.project_id}: new deploy secret (shown once, never again; the old one is refused from now on):`,
    );
    print(rotated.deploy_secret);
    note(
      `Put it in the CI's secret store as SHIPYARD_DEPLOY_SECRET (or a file for shipyard deploy --deploy-secret-file) before the next deploy of ${rotated.project_id}.`,
    );
    return EXIT_OK;
  },
};

const doUsage: Command = {
  path: ["do", "usage"],
  synopsis: "<project>",
  summary: "rolling 24 h Durable Object wall time against the enforcement threshold",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const usage = await apiFrom(values).call("getDoUsage", { params: { id: project } });
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
        ["as of", `${formatTime(usage.as_of)} (${usage.source}, may trail by ${formatDuration(usage.lag_ms)})`],
        ["threshold", formatDuration(usage.threshold_ms)],
        ["enforcement", usage.do_enforcement_status],
        ["removed bindings", usage.removed_bindings.map((b) => `${b.name} (${b.class_name})`).join(", ")],
        ["enforced at", formatTime(usage.enforced_at)],
      ]),
    );
    return EXIT_OK;
  },
};

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
    const run = await api.call("runEnforcement", {
      body: thresholdMs === undefined ? {} : { threshold_ms: thresholdMs },
    });
    if (!values.wait) {
      if (values.json) printJson(run);
      else print(`enforcement run ${run.run_id} started (status: ${run.status_url})`);
      return EXIT_OK;
    }
    const deadline = Date.now() + timeout * 1000;
    for (;;) {
      const status = await api.call("getEnforcementRun", { params: { id: run.run_id } });
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

const enforcementRestore: Command = {
  path: ["enforcement", "restore"],
  synopsis: "<project>",
  summary: "put back the Durable Object bindings enforcement removed",
  async run(args) {
    const { values, positionals } = parseCommand(args, {});
    const [project = ""] = positionalArgs(positionals, ["project"]);
    const answer = await apiFrom(values).call("restoreEnforcement", { params: { id: project } });
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
  projectsRotateSecret,
  doUsage,
  enforcementRun,
  enforcementRestore,
];
