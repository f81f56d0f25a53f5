/**
 * The exporter-toolkit web configuration file (the one every Prometheus
 * exporter reads with --web.config.file): TLS certificate and key, and
 * basic-auth users with bcrypt hashes.
 *
 *   tls_server_config:
 *     cert_file: server.crt
 *     key_file: server.key
 *   basic_auth_users:
 *     alice: $2y$10$...
 *
 * Paths are relative to the file, as in exporter-toolkit.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import bcrypt from "bcryptjs";
import { parse as parseYaml } from "yaml";

export class WebConfigError extends Error {
  override readonly name = "WebConfigError";
}

export interface WebConfig {
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly certFile: string; readonly keyFile: string };
  /** user → bcrypt hash. */
  readonly users: ReadonlyMap<string, string>;
}

const BCRYPT = /^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/** Parses the web config's YAML into two levels of string maps (what the format has). */
export function parseWebConfigText(text: string, file: string): Map<string, Map<string, string> | string> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    const line = (e as { linePos?: Array<{ line: number }> }).linePos?.[0]?.line;
    throw new WebConfigError(`Bad web config "${file}"${line !== undefined ? ` line ${line}` : ""}: ${((e as Error).message.split("\n")[0] ?? "").trim()}`);
  }
  const out = new Map<string, Map<string, string> | string>();
  if (doc === null || doc === undefined) return out;
  if (typeof doc !== "object" || Array.isArray(doc)) throw new WebConfigError(`Bad web config "${file}": expected a mapping of sections`);
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      out.set(k, String(v));
      continue;
    }
    const m = new Map<string, string>();
    for (const [k2, v2] of Object.entries(v as Record<string, unknown>)) m.set(k2, typeof v2 === "string" ? v2 : JSON.stringify(v2));
    out.set(k, m);
  }
  return out;
}

/** Reads and checks a web config file: every problem is one WebConfigError line. */
export function loadWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new WebConfigError(`Cannot read the web config "${file}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const doc = parseWebConfigText(text, file);
  const known = new Set(["tls_server_config", "basic_auth_users", "http_server_config"]);
  for (const k of doc.keys())
    if (!known.has(k))
      throw new WebConfigError(`Unknown key "${k}" in the web config "${file}": tls_server_config, basic_auth_users and http_server_config are supported`);
  const base = dirname(resolve(file));
  let tls: WebConfig["tls"];
  const t = doc.get("tls_server_config");
  if (t !== undefined) {
    if (typeof t === "string") throw new WebConfigError(`Bad tls_server_config in "${file}": expected cert_file and key_file under it`);
    const certFile = t.get("cert_file");
    const keyFile = t.get("key_file");
    if (!certFile || !keyFile) throw new WebConfigError(`Bad tls_server_config in "${file}": both cert_file and key_file are needed`);
    const read = (what: string, p: string): Buffer => {
      const path = resolve(base, p);
      try {
        return readFileSync(path);
      } catch (e) {
        throw new WebConfigError(`Cannot read the TLS ${what} "${path}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    };
    tls = { cert: read("certificate", certFile), key: read("key", keyFile), certFile: resolve(base, certFile), keyFile: resolve(base, keyFile) };
  }
  const users = new Map<string, string>();
  const u = doc.get("basic_auth_users");
  if (u !== undefined) {
    if (typeof u === "string") throw new WebConfigError(`Bad basic_auth_users in "${file}": expected "user: bcrypt-hash" lines under it`);
    for (const [name, hash] of u) {
      if (!BCRYPT.test(hash))
        throw new WebConfigError(
          `Bad bcrypt hash for user "${name}" in "${file}": expected $2y$NN$ and 53 characters (htpasswd -nbBC 10 USER PASSWORD makes one)`,
        );
      users.set(name, hash);
    }
  }
  return { ...(tls !== undefined ? { tls } : {}), users };
}

/**
 * Checks an Authorization header against the users. Successful checks are
 * cached (by a digest of the credentials) because bcrypt is slow on purpose
 * and Prometheus sends the same header every scrape.
 */
export class BasicAuth {
  readonly #users: ReadonlyMap<string, string>;
  readonly #ok = new Set<string>();
  constructor(users: ReadonlyMap<string, string>) {
    this.#users = users;
  }
  get enabled(): boolean {
    return this.#users.size > 0;
  }
  async check(header: string | undefined): Promise<boolean> {
    if (!this.enabled) return true;
    if (header === undefined || !header.startsWith("Basic ")) return false;
    const digest = createHash("sha256").update(header).digest("hex");
    if (this.#ok.has(digest)) return true;
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    const hash = this.#users.get(user);
    // Compare against a dummy hash for unknown users so timing does not tell which users exist.
    const ok = await bcrypt.compare(pass, hash ?? "$2b$10$0000000000000000000000000000000000000000000000000000.");
    if (ok && hash !== undefined) {
      if (this.#ok.size > 1000) this.#ok.clear();
      this.#ok.add(digest);
      return true;
    }
    return false;
  }
}
