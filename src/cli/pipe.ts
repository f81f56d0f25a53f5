/**
 * Exit status of a command whose standard output was closed by its reader
 * (`ctlab replay x.pcap --table - | head`): what a C tool killed by SIGPIPE
 * reports (128 + 13), as `conntrack -L | head` does. Node ignores SIGPIPE,
 * so the CLI ends itself quietly with this status instead.
 */
export const EXIT_PIPE = 141;

/**
 * Makes a closed standard output (EPIPE) end the process quietly with
 * EXIT_PIPE instead of an "Unhandled 'error' event" stack trace; errors on
 * standard error are dropped (there is nowhere left to report them).
 */
export function endQuietlyOnClosedPipe(): void {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(EXIT_PIPE);
    throw e;
  });
  process.stderr.on("error", () => {});
}
