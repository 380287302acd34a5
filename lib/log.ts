/**
 * Structured logs: one JSON object per line, always with a level and a stable snake_case `code`
 * that on-call can grep for and alert on. Workers Logs indexes the JSON fields.
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Record<string, unknown>;

function emit(level: LogLevel, code: string, fields: LogFields): void {
  const line = JSON.stringify({ level, code, ts: new Date().toISOString(), ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const log = {
  debug: (code: string, fields: LogFields = {}) => emit("debug", code, fields),
  info: (code: string, fields: LogFields = {}) => emit("info", code, fields),
  warn: (code: string, fields: LogFields = {}) => emit("warn", code, fields),
  error: (code: string, fields: LogFields = {}) => emit("error", code, fields),
};

/** Turns anything thrown into a loggable, serialisable description. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
