/** The helpers ctlab implements, by the name rules assign them with. */
import { ftpHelper } from "./ftp.js";
import type { ConntrackHelper } from "./helper.js";
import { tftpHelper } from "./tftp.js";

const HELPERS: ReadonlyMap<string, ConntrackHelper> = new Map<string, ConntrackHelper>([
  ["ftp", ftpHelper],
  ["tftp", tftpHelper],
]);

/** The helper of a name (`ftp`, `tftp`), or undefined. */
export function helperByName(name: string): ConntrackHelper | undefined {
  return HELPERS.get(name);
}
