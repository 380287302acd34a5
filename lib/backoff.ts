/**
 * Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * the delay for attempt n (1-based) is random in [base·2^(n-1)/2, base·2^(n-1)], capped. Half the
 * range is kept as a floor so a retry never comes back immediately.
 */
export function backoffMs(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** Deterministic doubling (no jitter): 1 s, 2 s, 4 s, … capped. Used where tests assert the schedule. */
export function doublingMs(attempt: number, baseMs: number, capMs: number): number {
  return Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
}
