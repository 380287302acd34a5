/**
 * `shipyard`: the on-call command line. Finds the command from the first one or two words, runs
 * it, and turns every outcome into an exit code: 0 ok, 1 failure, 2 usage.
 */
import { GLOBAL_HELP, UsageError } from "./args.ts";
import { type Command, EXIT_OK, EXIT_USAGE } from "./command.ts";
import { AUDIT_COMMANDS } from "./commands/audit.ts";
import { DEPLOY_COMMANDS } from "./commands/deploys.ts";
import { DLQ_COMMANDS } from "./commands/dlq.ts";
import { PROJECT_COMMANDS } from "./commands/projects.ts";
import { ManifestError } from "./manifest.ts";
import { note, print, reportError } from "./output.ts";

/** Every command, in the order `shipyard --help` lists them. */
export const COMMANDS: readonly Command[] = [
  ...DLQ_COMMANDS,
  ...PROJECT_COMMANDS,
  ...DEPLOY_COMMANDS,
  ...AUDIT_COMMANDS,
];

function usageLine(command: Command): string {
  return `shipyard ${command.path.join(" ")}${command.synopsis ? ` ${command.synopsis}` : ""}`;
}

/** `shipyard --help`, or the commands of one group (`shipyard dlq --help`). */
export function overview(group?: string): string {
  const listed = COMMANDS.filter((command) => group === undefined || command.path[0] === group);
  const width = Math.max(...listed.map((command) => command.path.join(" ").length));
  const lines = listed.map((command) => `  ${command.path.join(" ").padEnd(width)}  ${command.summary}`);
  return `Usage: shipyard <command> [options]

The on-call command line for Shipyard's admin API.

Commands:
${lines.join("\n")}

${GLOBAL_HELP}

Exit codes: 0 ok, 1 failure (the API refused, a deploy errored, Shipyard unreachable), 2 usage.
Run \`shipyard <command> --help\` for a command's options.`;
}

function commandHelp(command: Command): string {
  return `Usage: ${usageLine(command)}

${command.summary}
${command.options ? `\nOptions:\n${command.options}\n` : ""}
${GLOBAL_HELP}`;
}

/** The command `argv` selects (the longest matching path) and the arguments after its path. */
function resolve(argv: readonly string[]): { command: Command; rest: string[] } | null {
  let best: Command | null = null;
  for (const command of COMMANDS) {
    if (command.path.every((word, index) => argv[index] === word)) {
      if (!best || command.path.length > best.path.length) best = command;
    }
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : null;
}

/** Runs the CLI on `argv` (without `node` and the script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [first] = argv;
  if (first === undefined) {
    note(overview());
    return EXIT_USAGE;
  }
  if (first === "--help" || first === "-h" || first === "help") {
    print(overview());
    return EXIT_OK;
  }
  const found = resolve(argv);
  if (!found) {
    const group = COMMANDS.some((command) => command.path[0] === first) ? first : undefined;
    const wantsHelp = argv.includes("--help") || argv.includes("-h");
    if (group && wantsHelp) {
      print(overview(group));
      return EXIT_OK;
    }
    if (group && argv.length === 1) note(`error: \`shipyard ${group}\` needs a command`);
    else
      note(
        group ? `error: unknown command \`shipyard ${argv.slice(0, 2).join(" ")}\`` : `error: unknown command ${first}`,
      );
    note(group ? overview(group) : "run `shipyard --help` for the commands");
    return EXIT_USAGE;
  }
  if (found.rest.includes("--help") || found.rest.includes("-h")) {
    print(commandHelp(found.command));
    return EXIT_OK;
  }
  try {
    return await found.command.run(found.rest);
  } catch (error) {
    if (error instanceof UsageError) note(`usage: ${usageLine(found.command)}`);
    if (error instanceof ManifestError) {
      note(`error: ${error.message}`);
      return 1;
    }
    return reportError(error);
  }
}
