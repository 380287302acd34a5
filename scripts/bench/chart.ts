/**
 * `bench/results.svg`: a hand-built SVG of one run, two panels on log axes: end-to-end throughput
 * per telemetry arm, sweep point and counters arm (bars), and ingest-to-visible latency per
 * telemetry arm (p50 to p99 as a line, with a mark at each percentile). No dependencies.
 */
import { fmt } from "../lib/report.ts";
import type { BenchResults } from "./report.ts";

const WIDTH = 860;
const LABEL_W = 190;
const PLOT_X = LABEL_W + 10;
const PLOT_W = 560;
const ROW_H = 24;
const TITLE_H = 34;
const AXIS_H = 26;

const COLOR = {
  telemetry: "#2f6fdf",
  sweep: "#7aa5ef",
  counters: "#d9822b",
  p50: "#2f6fdf",
  p95: "#8a5cd1",
  p99: "#d23c3c",
};

interface Bar {
  label: string;
  value: number;
  color: string;
  text: string;
}

interface Range {
  label: string;
  p50: number;
  p95: number;
  p99: number;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A log10 axis over [10^lo, 10^hi] covering `values` (≥ 1). */
function logAxis(values: readonly number[]): { lo: number; hi: number; x: (value: number) => number } {
  const positive = values.map((value) => Math.max(1, value));
  const lo = Math.floor(Math.log10(Math.min(...positive)));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...positive))));
  return { lo, hi, x: (value) => PLOT_X + ((Math.log10(Math.max(1, value)) - lo) / (hi - lo)) * PLOT_W };
}

/** Grid lines and labels at each power of ten, below a panel of `rows` rows starting at `top`. */
function grid(axis: ReturnType<typeof logAxis>, top: number, rows: number): string[] {
  const bottom = top + rows * ROW_H;
  const parts: string[] = [];
  for (let power = axis.lo; power <= axis.hi; power++) {
    const x = axis.x(10 ** power).toFixed(1);
    parts.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#ddd"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle" class="tick">${fmt.int(10 ** power)}</text>`,
    );
  }
  return parts;
}

function barPanel(title: string, bars: readonly Bar[], top: number): { svg: string[]; height: number } {
  const axis = logAxis(bars.map((bar) => bar.value));
  const start = top + TITLE_H;
  const svg = [`<text x="10" y="${top + 22}" class="title">${escape(title)}</text>`, ...grid(axis, start, bars.length)];
  bars.forEach((bar, i) => {
    const y = start + i * ROW_H;
    const end = axis.x(bar.value);
    svg.push(
      `<text x="${LABEL_W}" y="${y + 16}" text-anchor="end">${escape(bar.label)}</text>`,
      `<rect x="${PLOT_X}" y="${y + 4}" width="${Math.max(1, end - PLOT_X).toFixed(1)}" height="${ROW_H - 8}" fill="${bar.color}"/>`,
      `<text x="${(end + 6).toFixed(1)}" y="${y + 16}" class="value">${escape(bar.text)}</text>`,
    );
  });
  return { svg, height: TITLE_H + bars.length * ROW_H + AXIS_H };
}

function rangePanel(title: string, ranges: readonly Range[], top: number): { svg: string[]; height: number } {
  const axis = logAxis(ranges.flatMap((range) => [range.p50, range.p99]));
  const start = top + TITLE_H;
  const svg = [
    `<text x="10" y="${top + 22}" class="title">${escape(title)}</text>`,
    ...grid(axis, start, ranges.length),
  ];
  ranges.forEach((range, i) => {
    const y = start + i * ROW_H + ROW_H / 2;
    const [x50, x95, x99] = [axis.x(range.p50), axis.x(range.p95), axis.x(range.p99)];
    svg.push(
      `<text x="${LABEL_W}" y="${y + 4}" text-anchor="end">${escape(range.label)}</text>`,
      `<line x1="${x50.toFixed(1)}" y1="${y}" x2="${x99.toFixed(1)}" y2="${y}" stroke="#999" stroke-width="2"/>`,
      `<circle cx="${x50.toFixed(1)}" cy="${y}" r="5" fill="${COLOR.p50}"/>`,
      `<circle cx="${x95.toFixed(1)}" cy="${y}" r="5" fill="${COLOR.p95}"/>`,
      `<circle cx="${x99.toFixed(1)}" cy="${y}" r="5" fill="${COLOR.p99}"/>`,
      `<text x="${(x99 + 10).toFixed(1)}" y="${y + 4}" class="value">${fmt.int(range.p50)} / ${fmt.int(range.p95)} / ${fmt.int(range.p99)} ms</text>`,
    );
  });
  const legendY = start + ranges.length * ROW_H + AXIS_H + 6;
  (["p50", "p95", "p99"] as const).forEach((name, i) => {
    const x = PLOT_X + i * 70;
    svg.push(
      `<circle cx="${x}" cy="${legendY}" r="5" fill="${COLOR[name]}"/>`,
      `<text x="${x + 9}" y="${legendY + 4}" class="tick">${name}</text>`,
    );
  });
  return { svg, height: TITLE_H + ranges.length * ROW_H + AXIS_H + 18 };
}

/** The chart for `results`, or null when no part produced a rate to draw. */
export function renderChart(results: BenchResults): string | null {
  const letter: Record<string, string> = { off: "A off", batch: "B batch", primary: "C primary" };
  const telemetry = [
    ...results.arms.map((r) => ({
      r,
      label: r.mode === "primary" ? `${letter[r.name] ?? r.name} (${r.shardCount} shards)` : (letter[r.name] ?? r.name),
      color: COLOR.telemetry,
    })),
    ...results.sweep.map((r) => ({
      r,
      label: `sweep: ${r.shardCount} shard${r.shardCount === 1 ? "" : "s"}`,
      color: COLOR.sweep,
    })),
  ];
  const bars: Bar[] = [
    ...telemetry.map(({ r, label, color }) => ({
      label,
      value: r.eventsPerSecond,
      color,
      text: `${fmt.int(r.eventsPerSecond)} events/s`,
    })),
    ...results.counters.map((r) => ({
      label: `counters ${r.mode}`,
      value: r.perSecond,
      color: COLOR.counters,
      text: `${fmt.int(r.perSecond)} increments/s`,
    })),
  ].filter((bar) => bar.value > 0);
  const ranges: Range[] = telemetry
    .filter(({ r }) => r.latency.events > 0)
    .map(({ r, label }) => ({ label, p50: r.latency.p50, p95: r.latency.p95, p99: r.latency.p99 }));
  if (bars.length === 0) return null;

  const body: string[] = [];
  let y = 0;
  const header = `Shipyard on local workerd, ${results.versions.cores} cores, ${results.date.toISOString().slice(0, 10)} (commit ${results.versions.commit})`;
  body.push(`<text x="10" y="20" class="header">${escape(header)}</text>`);
  y += 28;
  const throughput = barPanel("End-to-end throughput per second (log scale): until 95 % of N are rows in D1", bars, y);
  body.push(...throughput.svg);
  y += throughput.height + 10;
  if (ranges.length > 0) {
    const latency = rangePanel(
      `Ingest → visible in D1 per event, ms (log scale; D1 polled every ${results.pollMs} ms)`,
      ranges,
      y,
    );
    body.push(...latency.svg);
    y += latency.height;
  }
  const height = Math.ceil(y + 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    "<style>.header{font-size:14px;font-weight:600}.title{font-size:13px;font-weight:600}.tick{fill:#666;font-size:11px}.value{fill:#333}</style>",
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    ...body,
    "</svg>",
    "",
  ].join("\n");
}
