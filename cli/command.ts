/** The shape every `shipyard` command has; cli/main.ts dispatches on `path`. */
export interface Command {
  /** The words that select it, e.g. `["dlq", "ls"]`. */
  path: readonly string[];
  /** Arguments and options after the path, for the usage line. */
  synopsis: string;
  /** One line for `shipyard --help`. */
  summary: string;
  /** Option lines for `shipyard <command> --help`. */
  options?: string;
  /** Runs with the arguments after the path; resolves with the exit code. */
  run(args: string[]): Promise<number>;
}

/** Exit codes: the contract of the CLI with scripts (0 ok, 1 failure, 2 usage). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
