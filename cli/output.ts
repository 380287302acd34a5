/**
 * What the CLI prints: aligned tables and key/value blocks for people, JSON for scripts (`--json`),
 * a progress bar on a terminal, and the y/N question before anything destructive.
 */
import { createInterface } from "node:readline/promises";
import { ApiError, ConnectionError } from "./api.ts";
import { UsageError } from "./args.ts";

/** What a table cell or key/value may hold; null and "" print as "-". */
export type Cell = string | number | boolean | null | undefined;

/** One table column: its header and how to read its cell from a row. */
export interface Column<T> {
  header: string;
  value: (row: T) => Cell;
  /** Longer cells are cut with an ellipsis (tables stay one line per row). */
  max?: number;
}

function text(cell: Cell): string {
  if (cell === null || cell === undefined || cell === "") return "-";
  return String(cell).replaceAll(/\s+/g, " ");
}

function cut(value: string, max: number | undefined): string {
  return max !== undefined && value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/** An aligned table, header first; "(none)" when there are no rows. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  if (rows.length === 0) return "(none)";
  const cells = rows.map((row) => columns.map((column) => cut(text(column.value(row)), column.max)));
  const widths = columns.map((column, index) =>
    Math.max(column.header.length, ...cells.map((line) => line[index]?.length ?? 0)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, index) => (index === values.length - 1 ? value : value.padEnd(widths[index] ?? 0)))
      .join("  ")
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map(line)].join("\n");
}

/** `key: value` lines, keys aligned. */
export function keyValues(pairs: readonly [string, Cell][]): string {
  const width = Math.max(...pairs.map(([key]) => key.length));
  return pairs.map(([key, value]) => `${`${key}:`.padEnd(width + 2)}${text(value)}`).join("\n");
}

/** `2026-11-22 16:49:58Z` (UTC, seconds). */
export function formatTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "-";
  return new Date(ms)
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "Z");
}

/** `1h 02m 03s` for a duration in ms. */
export function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m ${String(s).padStart(2, "0")}s`;
  if (m > 0) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

/** A result line on stdout. */
export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** A result as indented JSON on stdout (`--json`). */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Status lines go to stderr so that stdout stays the command's result (pipes, `--json`). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** True when a person is at the terminal (a question can be asked, a bar drawn). */
export function interactive(): boolean {
  // Typed boolean, but undefined (falsy) at run time when not a terminal.
  return process.stdin.isTTY && process.stderr.isTTY;
}

/** Asks `question` on the terminal; only "y" or "yes" is a yes. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

/**
 * A progress bar on stderr: redrawn in place on a terminal; elsewhere (CI logs, pipes) one line
 * per change of the summary, so a log shows progress without a line per poll.
 */
export class ProgressBar {
  readonly #tty: boolean;
  readonly #width: number;
  #last = "";

  constructor(width = 30) {
    this.#tty = process.stderr.isTTY;
    this.#width = width;
  }

  update(done: number, total: number, suffix: string): void {
    const ratio = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(ratio * this.#width);
    const bar = `[${"█".repeat(filled)}${"░".repeat(this.#width - filled)}] ${done}/${total} ${suffix}`;
    if (this.#tty) {
      process.stderr.write(`\r\x1b[2K${bar}`);
    } else if (bar !== this.#last) {
      process.stderr.write(`${bar}\n`);
    }
    this.#last = bar;
  }

  /** Ends the bar's line on a terminal. */
  done(): void {
    if (this.#tty && this.#last) process.stderr.write("\n");
  }
}

/** Prints what went wrong and returns the exit code: 2 for usage mistakes, 1 for everything else. */
export function reportError(error: unknown): number {
  if (error instanceof UsageError) {
    note(`error: ${error.message}`);
    note("run `shipyard --help` (or `shipyard <command> --help`) for usage");
    return 2;
  }
  if (error instanceof ApiError) {
    note(`error: ${error.message}`);
    note(`  (HTTP ${error.status}, code ${error.code})`);
    if (error.details !== undefined)
      note(`  details: ${JSON.stringify(error.details, null, 2).replaceAll("\n", "\n  ")}`);
    return 1;
  }
  if (error instanceof ConnectionError) {
    note(`error: ${error.message}`);
    return 1;
  }
  note(`error: ${error instanceof Error ? error.message : String(error)}`);
  return 1;
}
