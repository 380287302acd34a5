/**
 * `npm run test:console`: the on-call console in a real browser (issue 16). Boots a fresh local
 * stack, deploys the sample tenant and gets it enforced (the demo's own phases), poisons a
 * telemetry message, then drives Debian's Chromium through the console: sign in, find the poisoned
 * message by its reason, redrive it and watch the bar complete, restore the enforced project,
 * check the CSP headers (and that the page runs under them without a violation), the pipeline
 * page, a narrow screen, keyboard focus, accessible names, and sign out. Writes a screenshot of
 * each page to .wrangler/console-screenshots/ (`--screenshots docs/console` refreshes the README's).
 * Exits 0 only if every check held; the last line is "N passed, N failed".
 *
 *   npm run test:console -- [--screenshots DIR] [--timeout 180]
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Page } from "playwright-core";
import { z } from "zod";
import { DlqListSchema } from "../schemas/dlq.schema.ts";
import { CONSOLE_CSP } from "../lib/console-headers.ts";
import { type Browser, launchChromium } from "./lib/browser.ts";
import { type Phase, Progress, Report, fmt, runPhases } from "./lib/report.ts";
import { ADMIN_TOKEN } from "./lib/stack.ts";
import { ROOT } from "./lib/wrangler.ts";
import { adminJson, waitFor } from "./demo/api.ts";
import { type DemoContext, need } from "./demo/context.ts";
import { callCounter, deployPhases } from "./demo/deploy.ts";
import { enforcementPhases } from "./demo/enforcement.ts";
import { bootPhaseFor, teardownPhase } from "./demo/lifecycle.ts";

const { values: args } = parseArgs({
  options: {
    screenshots: { type: "string", default: path.join(".wrangler", "console-screenshots") },
    timeout: { type: "string", default: "180" },
  },
});
const SHOTS = path.resolve(ROOT, args.screenshots);
const TIMEOUT_MS = Number(args.timeout) * 1000;
const CONSOLE = "Console (Chromium)";
const TELEMETRY_QUEUE = "shipyard-telemetry";
/** Poisoned messages, redriven at 2 a second: a few rounds, so the bar is seen moving. */
const POISONED = 6;
const VELOCITY = 2;

interface ConsoleContext extends DemoContext {
  browser?: Browser;
  page?: Page;
  /** CSP / Trusted Types violations and uncaught page errors, as the browser reported them. */
  violations: string[];
  poison?: { projectId: string; id: string; reason: string };
  shots: string[];
}

function page(ctx: ConsoleContext): Page {
  return need(ctx.page, "browser page (the console-open phase)");
}

async function shot(ctx: ConsoleContext, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  const file = path.join(SHOTS, `${name}.png`);
  await page(ctx).screenshot({ path: file, fullPage: options.fullPage ?? true });
  ctx.shots.push(path.relative(ROOT, file));
  console.log(`  screenshot ${path.relative(ROOT, file)}`);
}

/** Opens the sample tenant's page from the project list; returns its id. */
async function openProject(ctx: ConsoleContext): Promise<string> {
  const p = page(ctx);
  const projectId = need(ctx.deploy, "deploy state").projectId;
  await nav(p, "Projects").click();
  await p.getByRole("link", { name: projectId }).click();
  await p.getByRole("heading", { name: `Project ${projectId}` }).waitFor();
  return projectId;
}

/** A link of the console's main navigation. */
function nav(p: Page, name: string) {
  return p.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true });
}

/** Every visible control without an accessible name (a label, text, aria-label or title). */
async function unnamedControls(p: Page): Promise<string[]> {
  return p.evaluate(() => {
    const unnamed: string[] = [];
    for (const element of document.querySelectorAll<HTMLElement>("button, a[href], input, select, textarea, summary")) {
      if (element.offsetParent === null && element.tagName !== "SUMMARY") continue;
      const labelled =
        (element.textContent ?? "").trim().length > 0 ||
        element.getAttribute("aria-label") ||
        element.getAttribute("title") ||
        (element instanceof HTMLInputElement || element instanceof HTMLSelectElement
          ? (element.labels?.length ?? 0) > 0
          : false);
      if (!labelled) unnamed.push(element.outerHTML.slice(0, 120));
    }
    return unnamed;
  });
}

const PoisonSchema = z.looseObject({ queue: z.string() });
const SessionSchema = z.looseObject({ principal: z.string() });
const ProjectSchema = z.looseObject({ do_enforcement_status: z.string() });
const DownSchema = z.looseObject({ status: z.string() });

const consolePhases: Phase<ConsoleContext>[] = [
  {
    name: "poison",
    title: "Poison a telemetry message (POST /v1/admin/queues/:queue/send) and wait for it in the archive",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const projectId = `console-poison-${Date.now()}`;
      // Distinct bodies (a body is its message's identity in the archive), one reason.
      for (let i = 0; i < POISONED; i++) {
        await adminJson(stack, "POST", `/v1/admin/queues/${TELEMETRY_QUEUE}/send`, 202, PoisonSchema, {
          body: { type: "telemetry.events", project_id: projectId, events: `not a list (${i})` },
        });
      }
      const letters = await waitFor(
        stack,
        {
          timeoutMs: TIMEOUT_MS,
          intervalMs: 300,
          describe: () => `fewer than ${POISONED} dead letters of ${projectId}`,
        },
        async () => {
          const { items } = await adminJson(stack, "GET", `/v1/admin/dlq?project_id=${projectId}`, 200, DlqListSchema);
          return items.length >= POISONED ? items : undefined;
        },
      );
      const letter = letters[0];
      if (!letter) throw new Error("no dead letter");
      ctx.poison = { projectId, id: letter.id, reason: letter.last_error };
      console.log(`  archived ${letters.length} messages, reason: ${letter.last_error.split("\n")[0]}`);
    },
  },
  {
    name: "console-open",
    title: "Open /console in Chromium: CSP and security headers, no violation",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      mkdirSync(SHOTS, { recursive: true });
      ctx.browser = await launchChromium();
      const p = await ctx.browser.context.newPage();
      ctx.page = p;
      p.on("console", (message) => {
        const text = message.text();
        if (/Content Security Policy|Trusted Type|Refused to/i.test(text)) ctx.violations.push(text);
      });
      p.on("pageerror", (error) => ctx.violations.push(`page error: ${error.message}`));
      const response = await p.goto(`${stack.url}/console`);
      const headers = response?.headers() ?? {};
      ctx.report.check(
        "console: GET /console answers 200 with the strict CSP",
        response?.status() === 200 && headers["content-security-policy"] === CONSOLE_CSP,
        `${response?.status()} content-security-policy: ${headers["content-security-policy"] ?? "(none)"}`,
      );
      ctx.report.check(
        "console: framing, sniffing and referrer headers",
        headers["x-frame-options"] === "DENY" &&
          headers["x-content-type-options"] === "nosniff" &&
          headers["referrer-policy"] === "no-referrer",
        `x-frame-options ${headers["x-frame-options"]}, x-content-type-options ${headers["x-content-type-options"]}, referrer-policy ${headers["referrer-policy"]}`,
      );
      // The policy is enforced, not just sent: an injected inline script does not run.
      const injected = await p.evaluate(() => {
        try {
          const script = document.createElement("script");
          script.textContent = "document.documentElement.dataset.injected = 'ran'";
          document.body.append(script);
        } catch {
          // Trusted Types refuse the assignment itself.
        }
        return document.documentElement.dataset.injected ?? "blocked";
      });
      ctx.report.check("console: an injected inline script is blocked", injected === "blocked", injected);
      ctx.violations.length = 0; // The injection's own report is expected; count the app's from here.
      await p.getByLabel("Admin token").waitFor();
      await shot(ctx, "sign-in", { fullPage: false });
    },
  },
  {
    name: "console-sign-in",
    title: "Sign in with the admin token: an HttpOnly, Secure, SameSite=Strict cookie",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const p = page(ctx);
      await p.getByLabel("Admin token").fill("not-the-token");
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.getByRole("alert").waitFor();
      ctx.report.check(
        "console: a wrong token is refused",
        (await p.getByRole("alert").textContent())?.includes("401") === true,
        (await p.getByRole("alert").textContent()) ?? "",
      );
      await p.getByLabel("Admin token").fill(ADMIN_TOKEN);
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.getByRole("heading", { name: "Dead letters", level: 1 }).waitFor();
      const cookies = await need(ctx.browser, "browser").context.cookies(stack.url);
      const session = cookies.find((cookie) => cookie.name === "shipyard_session");
      ctx.report.check(
        "console: session cookie HttpOnly, Secure, SameSite=Strict (accepted by Chromium on http://127.0.0.1)",
        session?.httpOnly === true && session.secure && session.sameSite === "Strict",
        session ? `httpOnly ${session.httpOnly}, secure ${session.secure}, sameSite ${session.sameSite}` : "no cookie",
      );
      const storage = await p.evaluate(
        () => JSON.stringify(Object.entries(localStorage)) + JSON.stringify(Object.entries(sessionStorage)),
      );
      ctx.report.check(
        "console: the token is in no web storage and not readable by script",
        !storage.includes(ADMIN_TOKEN) && !(await p.evaluate(() => document.cookie)).includes("shipyard_session"),
        `storage ${storage}`,
      );
    },
  },
  {
    name: "console-dead-letters",
    title: "Find the poisoned message by its reason and open it",
    run: async (ctx) => {
      const p = page(ctx);
      const poison = need(ctx.poison, "poisoned message");
      // The counts per reason list it; filter by project and by a part of the reason, as on-call would.
      await p.getByLabel("Project", { exact: true }).fill(poison.projectId);
      await p.getByLabel("Reason contains").fill(poison.reason.slice(0, 24));
      await p.getByRole("button", { name: "Apply filters" }).click();
      const link = p.getByRole("link", { name: poison.id.slice(0, 12) });
      await link.waitFor({ timeout: 15_000 });
      const reasonButton = p.locator(".reasons button").filter({ hasText: poison.reason.slice(0, 40) });
      await reasonButton.first().waitFor({ timeout: 15_000 });
      const counted = (await reasonButton.locator(".count").textContent()) ?? "";
      ctx.report.check(
        `console: the counts per reason show the poisoned messages' reason (${POISONED})`,
        (await reasonButton.count()) === 1 && counted === String(POISONED),
        `${counted} × ${poison.reason.split("\n")[0]}`,
      );
      await shot(ctx, "dead-letters");
      await link.click();
      await p.getByRole("heading", { name: `Dead letter ${poison.id}` }).waitFor();
      const body = (await p.getByLabel("Message body").textContent()) ?? "";
      ctx.report.check(
        "console: the message shows its pretty-printed body and reason",
        body.includes('"events": "not a list (') &&
          ((await p.locator(".reason-text").textContent()) ?? "") === poison.reason,
        body.replace(/\s+/g, " ").slice(0, 120),
      );
      await shot(ctx, "dead-letter");
    },
  },
  {
    name: "console-redrive",
    title: `Redrive them from the list (all matching the reason, ${VELOCITY} per second) and watch the bar complete`,
    run: async (ctx) => {
      const p = page(ctx);
      const poison = need(ctx.poison, "poisoned message");
      await p.getByRole("link", { name: "← Dead letters" }).click();
      await p.getByLabel("Project", { exact: true }).fill(poison.projectId);
      await p.getByRole("button", { name: "Apply filters" }).click();
      // A selection counts for "Redrive selected"; the filter (project + reason) is what is redriven here.
      await p.getByLabel(`Select ${poison.id}`).check();
      await p.getByRole("button", { name: "Redrive selected (1)" }).waitFor();
      await p
        .locator(".reasons button")
        .filter({ hasText: poison.reason.slice(0, 40) })
        .click();
      await p.getByRole("heading", { name: `Messages (${POISONED} matching)` }).waitFor();
      await p.getByLabel("Messages per second").fill(String(VELOCITY));
      await p.getByRole("button", { name: "Redrive all matching" }).click();
      await p.getByRole("heading", { name: /^Redrive / }).waitFor();
      const bar = p.locator("progress#redrive-progress");
      const seen: string[] = [];
      const values: number[] = [];
      const started = Date.now();
      let final = { status: "", value: 0, max: 0 };
      while (Date.now() - started < TIMEOUT_MS) {
        const status = await p.getByTestId("redrive-status").textContent({ timeout: 5_000 });
        final = {
          status: status ?? "",
          value: Number(await bar.getAttribute("value")),
          max: Number(await bar.getAttribute("max")),
        };
        const line = `${final.status} ${final.value}/${final.max}`;
        if (seen.at(-1) !== line) {
          seen.push(line);
          values.push(final.value);
        }
        if (["completed", "failed", "cancelled"].includes(final.status)) break;
        await p.waitForTimeout(200);
      }
      console.log(`  bar: ${seen.join(" → ")}`);
      ctx.report.set(CONSOLE, "redrive bar as watched", seen.join(" → "));
      const forward = values.every((value, index) => index === 0 || value >= (values[index - 1] ?? 0));
      ctx.report.check(
        `console: the redrive bar only moves forward and completes (moved = total = ${POISONED})`,
        final.status === "completed" && final.value === POISONED && final.max === POISONED && forward,
        `${seen.join(" → ")} in ${fmt.s(Date.now() - started)}`,
      );
      await shot(ctx, "redrive");
      await nav(p, "Redrive").click();
      await p.getByRole("heading", { name: TELEMETRY_QUEUE }).waitFor();
      await shot(ctx, "redrives");
    },
  },
  {
    name: "console-restore",
    title: "Restore the enforced project from its page",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const p = page(ctx);
      const projectId = await openProject(ctx);
      const status = p.getByTestId("enforcement-status");
      await status.waitFor();
      const before = await status.textContent();
      await p.getByRole("img", { name: /Durable Object wall time/ }).waitFor();
      await p.locator("details.card summary").first().waitFor();
      await shot(ctx, "project-enforced");
      await p.getByRole("button", { name: "Restore bindings" }).click();
      await p.getByRole("status").filter({ hasText: "Restored" }).waitFor();
      await p.getByTestId("enforcement-status").filter({ hasText: "none" }).waitFor();
      const after = await adminJson(stack, "GET", `/v1/projects/${projectId}`, 200, ProjectSchema);
      const counter = await callCounter(stack, projectId);
      ctx.report.check(
        "console: restore clears enforcement (API agrees, the Durable Object route serves again)",
        before === "enforced" && after.do_enforcement_status === "none" && counter.status === 200,
        `page ${before} → none; GET /v1/projects → ${after.do_enforcement_status}; counter route → ${counter.status}`,
      );
      await shot(ctx, "project");
    },
  },
  {
    name: "console-cancel-delete-purge",
    title: "Cancel a redrive, delete one message, purge the rest after a dry-run preview",
    run: async (ctx) => {
      const p = page(ctx);
      const poison = need(ctx.poison, "poisoned message");
      // The redriven messages failed again and are back in the archive (same ids, attempts added up).
      const showProject = async (count: number) => {
        await nav(p, "Dead letters").click();
        // The page switches after the click: wait for it, so the project page's labels are gone.
        await p.getByRole("heading", { name: "Per failure reason" }).waitFor();
        await p.getByLabel("Project", { exact: true }).fill(poison.projectId);
        await p.getByRole("button", { name: "Apply filters" }).click();
        const heading = p.getByRole("heading", { name: `Messages (${count} matching)` });
        for (let i = 0; i < 60 && !(await heading.isVisible()); i++) {
          await p.getByRole("button", { name: "Refresh" }).click();
          await p.waitForTimeout(500);
        }
        await heading.waitFor({ timeout: 5_000 });
      };
      await showProject(POISONED);
      await p.getByLabel("Messages per second").fill("1");
      await p.getByRole("button", { name: "Redrive all matching" }).click();
      await p.getByRole("button", { name: "Cancel redrive" }).click();
      const status = p.getByTestId("redrive-status");
      await status.filter({ hasText: /^cancelled$/ }).waitFor({ timeout: TIMEOUT_MS });
      const moved = Number(await p.getByTestId("redrive-moved").textContent());
      ctx.report.check(
        "console: Cancel stops a redrive before it is done",
        (await status.textContent()) === "cancelled" && moved < POISONED,
        `cancelled after moving ${moved} of ${POISONED}`,
      );

      await showProject(POISONED);
      await p.getByRole("link", { name: poison.id.slice(0, 12) }).click();
      await p.getByRole("button", { name: "Delete…" }).click();
      await p.getByRole("button", { name: "Yes, delete" }).click();
      await p.getByRole("status").filter({ hasText: "Deleted" }).waitFor();

      await showProject(POISONED - 1);
      await p.getByRole("button", { name: "Preview purge" }).click();
      const preview = p.getByRole("status").filter({ hasText: "Dry run" });
      await preview.waitFor();
      const previewText = (await preview.textContent()) ?? "";
      await p.getByRole("button", { name: `Delete ${POISONED - 1} messages` }).click();
      await p.getByRole("status").filter({ hasText: "Purged" }).waitFor();
      await p.getByRole("heading", { name: "Messages (0 matching)" }).waitFor();
      ctx.report.check(
        "console: delete takes one message, the purge preview counts the rest and the purge takes them",
        previewText.includes(`${POISONED - 1} archived messages would be deleted`),
        previewText,
      );
    },
  },
  {
    name: "console-pipeline",
    title: "Pipeline: live metrics and the audit log (every action above is in it), CSV export",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const p = page(ctx);
      await nav(p, "Pipeline").click();
      await p.getByTestId("metric-buffered").waitFor();
      await p.getByLabel("Types").fill("session.*,redrive.started,enforcement.cleared");
      await p.getByRole("button", { name: "Apply filters" }).click();
      const rows = p.locator("table.list tbody tr");
      await rows.filter({ hasText: "enforcement.cleared" }).first().waitFor({ timeout: 15_000 });
      const text = (await rows.allTextContents()).join("\n");
      ctx.report.check(
        "console: sign-in, redrive and restore are audited",
        ["session.created", "redrive.started", "enforcement.cleared"].every((type) => text.includes(type)),
        `${await rows.count()} audit rows`,
      );
      const csvHref = await p.getByRole("link", { name: "Export CSV" }).getAttribute("href");
      const csv = await p.request.get(`${stack.url}${csvHref ?? ""}`);
      ctx.report.check(
        "console: CSV export downloads with the session cookie",
        csv.status() === 200 && (csv.headers()["content-type"] ?? "").startsWith("text/csv"),
        `${csv.status()} ${csv.headers()["content-type"]}`,
      );
      await shot(ctx, "pipeline");
    },
  },
  {
    name: "console-usable",
    title: "Narrow screen, keyboard, accessible names",
    run: async (ctx) => {
      const p = page(ctx);
      const unnamed: string[] = [];
      for (const hash of ["#/dlq", "#/redrive", "#/projects", "#/pipeline"]) {
        await p.evaluate((target) => (location.hash = target), hash);
        await p.waitForTimeout(500);
        unnamed.push(...(await unnamedControls(p)));
      }
      ctx.report.check(
        "console: every control has an accessible name",
        unnamed.length === 0,
        unnamed.join(" · ") || "all named",
      );
      // A page change moves focus to its heading; from there the keyboard reaches everything.
      await p.evaluate(() => (location.hash = "#/dlq"));
      await p.getByRole("heading", { name: "Dead letters", level: 1 }).waitFor();
      await p.waitForTimeout(300);
      const focused = () =>
        p.evaluate(
          () => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.textContent?.trim(),
        );
      const heading = await focused();
      await p.keyboard.press("Tab");
      const next = await p.evaluate(() => document.activeElement?.id);
      await p.keyboard.press("Shift+Tab");
      const signOut = await focused();
      await p.keyboard.press("Shift+Tab");
      const pipeline = await focused();
      await p.keyboard.press("Enter");
      await p.getByRole("heading", { name: "Pipeline", level: 1 }).waitFor({ timeout: 5_000 });
      const arrived = await focused();
      const first = await p.evaluate(() =>
        document.querySelector("a[href], button, input, select")?.textContent?.trim(),
      );
      ctx.report.check(
        "console: keyboard: focus on the heading after a page change, Tab to the filters, Shift+Tab to the navigation, Enter follows it",
        heading === "Dead letters" &&
          next === "filter-queue" &&
          signOut === "Sign out" &&
          pipeline === "Pipeline" &&
          arrived === "Pipeline" &&
          first === "Skip to content",
        `focus ${heading} → Tab #${next} → Shift+Tab ${signOut} → Shift+Tab → ${pipeline} → Enter → ${arrived}; first focusable: ${first}`,
      );
      await p.setViewportSize({ width: 380, height: 800 });
      for (const hash of ["#/dlq", "#/projects"]) {
        await p.evaluate((target) => (location.hash = target), hash);
        await p.waitForTimeout(500);
        const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        ctx.report.check(`console: no sideways scrolling at 380 px (${hash})`, overflow <= 0, `${overflow} px wider`);
      }
      await p.evaluate(() => (location.hash = "#/dlq"));
      await p.waitForTimeout(300);
      await shot(ctx, "narrow-dead-letters");
      await p.setViewportSize({ width: 1280, height: 900 });
    },
  },
  {
    name: "console-down",
    title: "Take the project down: the data-loss warning and the typed confirmation",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const p = page(ctx);
      const projectId = await openProject(ctx);
      const warning = (await p.locator(".danger-zone .warning").textContent()) ?? "";
      const button = p.getByRole("button", { name: `Take ${projectId} down` });
      await p.getByLabel(/Type the project id/).fill(`${projectId}-typo`);
      const disabledOnTypo = await button.isDisabled();
      await p.getByLabel(/Type the project id/).fill(projectId);
      await button.click();
      await p.getByRole("status").filter({ hasText: "Down started" }).waitFor();
      const project = await waitFor(
        stack,
        { timeoutMs: TIMEOUT_MS, intervalMs: 500, describe: () => `${projectId} is not deleted yet` },
        async () => {
          const status = await adminJson(stack, "GET", `/v1/projects/${projectId}`, 200, DownSchema);
          return status.status === "deleted" ? status : undefined;
        },
      );
      ctx.report.check(
        "console: down warns of data loss, waits for the typed id, and takes the project down",
        warning.includes("Counter") && disabledOnTypo && project.status === "deleted",
        `warning "${warning}", disabled on a typo ${disabledOnTypo}, project ${project.status}`,
      );
    },
  },
  {
    name: "console-sign-out",
    title: "Sign out: the cookie is gone and the API refuses the browser",
    run: async (ctx) => {
      const stack = need(ctx.stack, "stack");
      const p = page(ctx);
      await p.getByRole("button", { name: "Sign out" }).click();
      await p.getByLabel("Admin token").waitFor();
      const cookies = await need(ctx.browser, "browser").context.cookies(stack.url);
      const probe = await p.request.get(`${stack.url}/v1/admin/session`);
      ctx.report.check(
        "console: sign-out clears the session",
        !cookies.some((cookie) => cookie.name === "shipyard_session") && probe.status() === 401,
        `cookies [${cookies.map((cookie) => cookie.name).join(", ")}], GET /v1/admin/session → ${probe.status()}`,
      );
      ctx.report.check(
        "console: no CSP or Trusted Types violation and no page error while in use",
        ctx.violations.length === 0,
        ctx.violations.join(" · ") || "none",
      );
      // The bearer API is untouched by the console.
      await adminJson(stack, "GET", "/v1/admin/session", 200, SessionSchema);
    },
  },
  {
    name: "console-close",
    title: "Close Chromium",
    always: true,
    run: async (ctx) => {
      // What the page showed when a phase failed (an error box says more than a timeout).
      if (ctx.page && ctx.report.failedPhases.length > 0) await shot(ctx, "failure").catch(() => undefined);
      await ctx.browser?.close();
      ctx.browser = undefined;
      console.log(`  ${ctx.shots.length} screenshots in ${path.relative(ROOT, SHOTS)}`);
    },
  },
];

const PHASES: Phase<ConsoleContext>[] = [
  bootPhaseFor("console-test"),
  ...deployPhases({ timeoutMs: TIMEOUT_MS }),
  ...enforcementPhases({ timeoutMs: TIMEOUT_MS }).filter(
    (phase) => phase.name === "do-usage" || phase.name === "enforce",
  ),
  ...consolePhases,
  teardownPhase,
];

const ctx: ConsoleContext = {
  report: new Report("Shipyard console in Chromium"),
  progress: new Progress(),
  at: {},
  violations: [],
  shots: [],
};
const started = Date.now();
await runPhases(PHASES, ctx);
ctx.report.set(CONSOLE, "screenshots", ctx.shots.join(", "));
ctx.report.set(CONSOLE, "whole run", fmt.s(Date.now() - started));
ctx.report.print();
const passed = ctx.report.checks.filter((check) => check.ok).length;
const failed = ctx.report.checks.length - passed + ctx.report.failedPhases.length;
if (!ctx.report.ok && ctx.stack) console.error(`wrangler log: ${ctx.stack.logPath}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exit(ctx.report.ok ? 0 : 1);
