/**
 * The machine cannot do what was asked: a tool is missing, ctlab is not root,
 * a namespace cannot be made. Not a problem of the input (that is a
 * RulesetSyntaxError or a capture error), so it says what to install or run.
 */
export class EnvironmentError extends Error {
  override readonly name = "EnvironmentError";
  /** What is missing: a tool, root privileges, or a scratch network namespace. */
  readonly need: "tool" | "root" | "namespace";
  constructor(need: "tool" | "root" | "namespace", message: string) {
    super(message);
    this.need = need;
  }
}
