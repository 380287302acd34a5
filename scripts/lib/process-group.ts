/** Process groups of the stack's children (each `wrangler dev` runs detached, in its own group). */

/** Is any process left in process group `pgid`? (signal 0 probes without signalling) */
export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return error instanceof Error && "code" in error && error.code === "EPERM";
  }
}

/** Sends `signal` to every process of group `pgid` (none left is fine). */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // Already gone.
  }
}
