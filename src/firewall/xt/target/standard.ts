/**
 * The standard verdicts ACCEPT, DROP and RETURN (libxt_standard).
 */
import type { Action } from "../../model.js";
import type { TargetCall, XtTarget } from "../types.js";

function build({ name }: TargetCall): Action[] {
  return name === "ACCEPT" ? [{ kind: "accept" }] : name === "DROP" ? [{ kind: "drop" }] : [{ kind: "return" }];
}

function list(): string {
  return "";
}

export const ACCEPT: XtTarget = {
  type: "target",
  name: "ACCEPT",
  options: {},
  build,
  list,
};

export const DROP: XtTarget = {
  type: "target",
  name: "DROP",
  options: {},
  build,
  list,
};

export const RETURN: XtTarget = {
  type: "target",
  name: "RETURN",
  options: {},
  build,
  list,
};
