/**
 * Script scaffolding shared by demo and bench: a live progress line, a run made of named phases,
 * and one report object every phase writes into (figures, invariant checks, notes), rendered to
 * the console and to Markdown at the end.
 */
import { writeFileSync } from "node:fs";

/** A single updating status line on a TTY; a line every few seconds otherwise (CI logs). */
export class Progress {
  readonly #tty = process.stdout.isTTY;
  #last = 0;
  #shown = "";

  update(text: string): void {
    const now = Date.now();
    if (this.#tty) {
      if (now - this.#last < 100) return;
      this.#last = now;
      const width = process.stdout.columns || 120;
      const line = text.length >= width ? `${text.slice(0, width - 2)}…` : text;
      process.stdout.write(`\r${line.padEnd(this.#shown.length)}`);
      this.#shown = line;
    } else if (now - this.#last >= 3_000) {
      this.#last = now;
      console.log(`  … ${text}`);
    }
  }

  /** Ends the live line with a final text. */
  done(text: string): void {
    if (this.#tty && this.#shown) process.stdout.write(`\r${" ".repeat(this.#shown.length)}\r`);
    this.#shown = "";
    this.#last = 0;
    console.log(`  ${text}`);
  }

  /** Clears the live line (before an error message). */
  clear(): void {
    if (this.#tty && this.#shown) process.stdout.write(`\r${" ".repeat(this.#shown.length)}\r`);
    this.#shown = "";
  }
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString("en-US"),
  dec: (n: number, digits = 1) =>
    Number.isFinite(n)
      ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
      : "n/a",
  s: (ms: number) => `${(ms / 1000).toFixed(1)} s`,
  pct: (n: number) => `${(n * 100).toFixed(1)} %`,
  mib: (bytes: number) => `${Math.round(bytes / 1024 / 1024).toLocaleString("en-US")} MiB`,
};

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface PhaseRecord {
  name: string;
  title: string;
  status: "ok" | "failed" | "skipped";
  ms: number;
  error?: string;
}

type Value = string | number;

/** Everything a run found out; phases add to it, the end renders it. */
export class Report {
  readonly title: string;
  readonly startedAt = new Date();
  readonly phases: PhaseRecord[] = [];
  readonly checks: Check[] = [];
  readonly notes: string[] = [];
  /** Ordered sections of key → value rows. */
  readonly sections = new Map<string, Map<string, Value>>();
  /** Free-form Markdown blocks (tables), in order, after the sections. */
  readonly blocks: { heading: string; markdown: string }[] = [];

  constructor(title: string) {
    this.title = title;
  }

  set(section: string, key: string, value: Value): void {
    let rows = this.sections.get(section);
    if (!rows) {
      rows = new Map();
      this.sections.set(section, rows);
    }
    rows.set(key, value);
  }

  /** Records an invariant; a failed one makes the run fail. */
  check(name: string, ok: boolean, detail: string): boolean {
    this.checks.push({ name, ok, detail });
    return ok;
  }

  note(text: string): void {
    this.notes.push(text);
  }

  block(heading: string, markdown: string): void {
    this.blocks.push({ heading, markdown });
  }

  get failedChecks(): Check[] {
    return this.checks.filter((check) => !check.ok);
  }

  get failedPhases(): PhaseRecord[] {
    return this.phases.filter((phase) => phase.status === "failed");
  }

  get ok(): boolean {
    return this.failedChecks.length === 0 && this.failedPhases.length === 0;
  }

  toMarkdown(extraHeader = ""): string {
    const lines = [`# ${this.title}`, "", `Run ${this.startedAt.toISOString()}. ${extraHeader}`.trim(), ""];
    lines.push(`**Result: ${this.ok ? "PASS" : "FAIL"}**`, "");
    for (const [section, rows] of this.sections) {
      lines.push(`## ${section}`, "", "| | |", "|---|---:|");
      for (const [key, value] of rows) lines.push(`| ${key} | ${typeof value === "number" ? fmt.int(value) : value} |`);
      lines.push("");
    }
    for (const { heading, markdown } of this.blocks) lines.push(`## ${heading}`, "", markdown.trimEnd(), "");
    if (this.checks.length > 0) {
      lines.push("## Invariants", "", "| check | result | detail |", "|---|---|---|");
      for (const check of this.checks)
        lines.push(`| ${check.name} | ${check.ok ? "ok" : "**FAILED**"} | ${check.detail} |`);
      lines.push("");
    }
    lines.push("## Phases", "", "| phase | status | time |", "|---|---|---:|");
    for (const phase of this.phases) {
      lines.push(
        `| ${phase.title} | ${phase.status}${phase.error ? `: ${phase.error.split("\n")[0]}` : ""} | ${fmt.s(phase.ms)} |`,
      );
    }
    lines.push("");
    if (this.notes.length > 0) lines.push("## Notes", "", ...this.notes.map((note) => `- ${note}`), "");
    return `${lines.join("\n")}\n`;
  }

  /** A compact console rendering of the sections and checks. */
  print(): void {
    console.log(`\n${this.title}`);
    for (const [section, rows] of this.sections) {
      console.log(`\n  ${section}`);
      const width = Math.max(...[...rows.keys()].map((key) => key.length));
      for (const [key, value] of rows)
        console.log(`    ${key.padEnd(width)}  ${typeof value === "number" ? fmt.int(value) : value}`);
    }
    if (this.checks.length > 0) {
      console.log("\n  Invariants");
      for (const check of this.checks)
        console.log(`    ${check.ok ? "ok    " : "FAILED"}  ${check.name}: ${check.detail}`);
    }
    for (const note of this.notes) console.log(`  note: ${note}`);
  }

  write(file: string, extraHeader = ""): void {
    writeFileSync(file, this.toMarkdown(extraHeader));
  }
}

/**
 * A named step of a run. Phases run in order; after a failure the rest are skipped except those
 * marked `always` (teardown). A phase reads and writes the run's shared context and report.
 */
export interface Phase<C> {
  name: string;
  title: string;
  always?: boolean;
  run: (ctx: C) => Promise<void>;
}

export async function runPhases<C extends { report: Report; progress: Progress }>(
  phases: readonly Phase<C>[],
  ctx: C,
): Promise<void> {
  let failed = false;
  for (const phase of phases) {
    if (failed && !phase.always) {
      ctx.report.phases.push({ name: phase.name, title: phase.title, status: "skipped", ms: 0 });
      continue;
    }
    console.log(`\n▶ ${phase.title}`);
    const started = Date.now();
    try {
      await phase.run(ctx);
      ctx.report.phases.push({ name: phase.name, title: phase.title, status: "ok", ms: Date.now() - started });
    } catch (error) {
      failed = true;
      ctx.progress.clear();
      const message = error instanceof Error ? error.message : String(error);
      console.error(`  ✖ ${phase.title} failed: ${message}`);
      ctx.report.phases.push({
        name: phase.name,
        title: phase.title,
        status: "failed",
        ms: Date.now() - started,
        error: message,
      });
    }
  }
}
