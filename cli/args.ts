/**
 * Argument parsing for every command: Node's `util.parseArgs`, strict, with the global options
 * merged into each command's own (so `--json` or `--url` may stand anywhere on the line).
 * Why no CLI framework: docs/decisions/0008-cli.md.
 */
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Options every command accepts. */
export const GLOBAL_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsOptionsConfig;

export const GLOBAL_HELP = `Global options:
  --url <url>      Shipyard's base URL (env SHIPYARD_URL, default http://127.0.0.1:8787)
  --token <token>  admin token (env SHIPYARD_ADMIN_TOKEN, default dev-admin-token)
  --json           machine-readable JSON on stdout instead of tables
  -h, --help       this help`;

/** Parses `args` strictly against the global options and `options`; a mistake is a `UsageError`. */
export function parseCommand<const O extends ParseArgsOptionsConfig>(args: string[], options: O) {
  try {
    return parseArgs({ args, options: { ...GLOBAL_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Exactly `names.length` positionals, named for the error message. */
export function positionalArgs(positionals: string[], names: readonly string[]): string[] {
  if (positionals.length < names.length) {
    throw new UsageError(
      `missing ${names
        .slice(positionals.length)
        .map((name) => `<${name}>`)
        .join(" ")}`,
    );
  }
  if (positionals.length > names.length) throw new UsageError(`unexpected argument ${positionals[names.length]}`);
  return positionals;
}

/** A positive integer option, or undefined when absent. */
export function intOption(
  name: string,
  value: string | undefined,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(`--${name} must be an integer in ${min}..${max}, got ${value}`);
  }
  return parsed;
}

const UNIT_MS = new Map([
  ["s", 1_000],
  ["m", 60_000],
  ["h", 3_600_000],
  ["d", 86_400_000],
]);

/** A time option: epoch ms, ISO 8601, or relative to now (`30m`, `24h`, `7d` ago). */
export function timeOption(name: string, value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const relative = /^(\d+)([smhd])$/.exec(value);
  const unit = UNIT_MS.get(relative?.[2] ?? "");
  if (relative && unit !== undefined) return now - Number(relative[1]) * unit;
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) {
    throw new UsageError(`--${name} must be epoch ms, an ISO 8601 time or a duration ago such as 24h, got ${value}`);
  }
  return parsed;
}
