/**
 * `ctlab exporter`: Prometheus metrics over HTTP(S), loopback by default.
 */
import { createServer as createHttp } from "node:http";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { createServer as createHttps } from "node:https";
import { ConntrackExporter } from "../host/exporter.js";
import { BasicAuth, loadWebConfig, WebConfigError } from "../host/webconfig.js";
import type { WebConfig } from "../host/webconfig.js";
import { CliError } from "./errors.js";
import { targetsOf } from "./doctor.js";

/** "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) throw new CliError(`Bad --listen "${text}": expected HOST:PORT, [IPV6]:PORT or :PORT`);
  return { host: m[1] ?? (m[2] === "" ? "::" : (m[2] as string)), port };
}

function num(v: unknown, name: string, min: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new CliError(`Bad ${name} "${String(v)}": a number of at least ${min}`);
  return n;
}

export interface RunningExporter {
  readonly server: Server;
  readonly exporter: ConntrackExporter;
  readonly url: string;
  close(): Promise<void>;
}

export async function startExporter(opts: Record<string, unknown>): Promise<RunningExporter> {
  const { host, port } = parseListen(typeof opts["listen"] === "string" ? opts["listen"] : "127.0.0.1:9642");
  let web: WebConfig = { users: new Map() };
  if (typeof opts["webConfigFile"] === "string") {
    try {
      web = loadWebConfig(opts["webConfigFile"]);
    } catch (e) {
      if (e instanceof WebConfigError) throw new CliError(e.message, 2);
      throw e;
    }
  }
  const targets = targetsOf(opts);
  const exporter = new ConntrackExporter({
    targets,
    netnsLabel: opts["allNetns"] === true,
    topN: num(opts["top"] ?? 10, "--top", 0),
    tableIntervalMs: num(opts["tableInterval"] ?? 60, "--table-interval", 1) * 1000,
    scrapeBudgetMs: num(opts["scrapeBudget"] ?? 3, "--scrape-budget", 0.1) * 1000,
  });
  const auth = new BasicAuth(web.users);
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      if (!(await auth.check(req.headers.authorization))) {
        res.writeHead(401, { "WWW-Authenticate": 'Basic realm="ctlab"', "Content-Type": "text/plain" });
        res.end("Unauthorized\n");
        return;
      }
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/metrics") {
        try {
          const body = await exporter.scrape();
          res.writeHead(200, { "Content-Type": exporter.registry.contentType });
          res.end(body);
        } catch (e) {
          res.writeHead(500, { "Content-Type": "text/plain" });
          res.end(`Scrape failed: ${(e as Error).message}\n`);
        }
      } else if (path === "/") {
        res.writeHead(200, { "Content-Type": "text/html" });
        res.end('<html><head><title>ctlab exporter</title></head><body><h1>ctlab exporter</h1><p><a href="/metrics">Metrics</a></p></body></html>\n');
      } else {
        res.writeHead(404, { "Content-Type": "text/plain" });
        res.end("Not found\n");
      }
    })();
  };
  let server: Server;
  try {
    server = web.tls !== undefined ? createHttps({ cert: web.tls.cert, key: web.tls.key }, handler) : createHttp(handler);
  } catch (e) {
    throw new CliError(`Cannot use the TLS certificate "${web.tls?.certFile ?? ""}" and key "${web.tls?.keyFile ?? ""}": ${(e as Error).message}`, 2);
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      const where = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
      if (e.code === "EADDRINUSE") reject(new CliError(`Cannot listen on "${where}": the address is already in use`, 2));
      else if (e.code === "EACCES") reject(new CliError(`Cannot listen on "${where}": permission denied (ports below 1024 need root)`, 2));
      else if (e.code === "EADDRNOTAVAIL") reject(new CliError(`Cannot listen on "${where}": no such local address`, 2));
      else reject(new CliError(`Cannot listen on "${where}": ${e.code ?? e.message}`, 2));
    });
    server.listen(port, host, () => resolve());
  });
  exporter.start();
  const addr = server.address();
  const realPort = typeof addr === "object" && addr !== null ? addr.port : port;
  const url = `${web.tls !== undefined ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${realPort}/metrics`;
  return {
    server,
    exporter,
    url,
    close: () =>
      new Promise<void>((resolve) => {
        exporter.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function exporterCommand(opts: Record<string, unknown>): Promise<number> {
  const running = await startExporter(opts);
  process.stderr.write(`ctlab exporter: serving ${running.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      void running.close().then(resolve);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}
