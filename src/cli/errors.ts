/**
 * The one error class for usage problems: bad options, unreadable inputs named
 * on the command line. main() prints its message (no stack) and exits with
 * `exitCode`; every other error is a bug and shows its stack.
 */
export class CliError extends Error {
  override readonly name = "CliError";
  /** Process exit code: 1 for usage errors, 2 for unusable input. */
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}
