/**
 * Scenario files: what `ctlab simulate` runs. One zod definition gives the
 * validation (errors name the key, the value and what was expected) and the
 * JSON Schema shipped in schema/scenario.schema.json for editors.
 */
import { z } from "zod";
import { parse as parseYaml, YAMLParseError } from "yaml";
import { resolveSysctls, SysctlError } from "../conntrack/sysctl.js";
import { parseIp } from "../packet/addr.js";

/** A scenario that cannot run, with the key and value at fault. */
export class ScenarioError extends Error {
  /** Dotted path of the key at fault ("traffic.1.rate"), or "" for the file as a whole. */
  readonly key: string;
  constructor(key: string, message: string) {
    super(message);
    this.name = "ScenarioError";
    this.key = key;
  }
}

const seconds = z.number().min(0);
const rate = z.number().positive().describe("per second");
const ipv4 = z.string().refine(
  (s) => {
    try {
      return parseIp(s).length === 4;
    } catch {
      return false;
    }
  },
  { error: "expected an IPv4 address such as 203.0.113.10" },
);
const ipv4Prefix = z.string().refine(
  (s) => {
    const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
    if (m === null || Number(m[2]) < 8 || Number(m[2]) > 30) return false;
    try {
      return parseIp(m[1] as string).length === 4;
    } catch {
      return false;
    }
  },
  { error: "expected an IPv4 prefix /8 to /30 such as 192.168.0.0/16" },
);
const service = z
  .string()
  .regex(/^(tcp|udp)\/\d{1,5}$/, { error: 'expected "tcp/PORT" or "udp/PORT", e.g. "tcp/443"' })
  .refine((s) => Number(s.split("/")[1]) >= 1 && Number(s.split("/")[1]) <= 65535, { error: "expected a port 1–65535" });

const arrival = z
  .union([
    z.literal("constant"),
    z.literal("poisson"),
    z.strictObject({
      ramp: z.strictObject({ from: z.number().min(0), to: z.number().min(0) }).describe("rate goes linearly from `from` to `to` over the source's active time"),
    }),
    z.strictObject({
      diurnal: z.strictObject({
        trough: z.number().min(0).describe("lowest rate as a fraction of `rate`"),
        period: z.number().positive().default(86400).describe("seconds of one cycle"),
      }),
    }),
  ])
  .describe("how arrivals are spaced: constant intervals, Poisson (exponential gaps), a linear ramp or a daily cycle");

const loss = z
  .strictObject({
    all: z.number().min(0).max(1).default(0).describe("probability that any packet is lost"),
    fin: z.number().min(0).max(1).default(0).describe("probability that a FIN is lost"),
    rst: z.number().min(0).max(1).default(0).describe("probability that a RST is lost"),
    direction: z.enum(["both", "to-server", "to-client"]).default("both"),
    where: z
      .enum(["before", "after"])
      .default("before")
      .describe("before the tracking host (the table never sees the packet) or after it (the table moved on, the peer never heard)"),
  })
  .describe("a lossy path between the clients and the server");

const window = {
  start: seconds.default(0).describe("seconds after the scenario start"),
  end: seconds.optional().describe("seconds after the scenario start (default: the end)"),
};

const clients = z.strictObject({
  type: z.literal("clients"),
  name: z.string().optional(),
  rate: rate.describe("new connections per second"),
  arrival: arrival.default("poisson"),
  service: service.default("tcp/443"),
  ...window,
  clients: z.number().int().positive().default(65536).describe("distinct client addresses"),
  rtt: z.number().positive().default(0.02).describe("round-trip time in seconds"),
  request: z.number().int().min(1).max(1448).default(400).describe("request bytes"),
  response: z.number().int().min(1).max(1_000_000).default(2000).describe("response bytes (sent in 1448-byte segments)"),
  requests: z.number().int().min(1).default(1).describe("requests per connection (keep-alive)"),
  think: seconds.default(1).describe("seconds between requests on a kept-alive connection"),
  close: z.enum(["client-fin", "server-fin", "rst"]).default("client-fin").describe("how connections end"),
  vanish: z.number().min(0).max(1).default(0).describe("fraction of clients that crash after the handshake and send nothing more"),
  loss: loss.optional(),
});

const dns = z.strictObject({
  type: z.literal("dns"),
  name: z.string().optional(),
  rate: rate.describe("lookups per second (each an A and an AAAA query from one socket)"),
  arrival: arrival.default("poisson"),
  service: service.default("udp/53"),
  ...window,
  clients: z.number().int().positive().default(4096),
  rtt: z.number().positive().default(0.01),
  timeout: z.number().positive().default(5).describe("resolver timeout in seconds (resolv.conf timeout)"),
  attempts: z.number().int().min(1).default(2).describe("resolver attempts (resolv.conf attempts)"),
  loss: loss.optional(),
});

const synFlood = z.strictObject({
  type: z.literal("syn-flood"),
  name: z.string().optional(),
  rate: rate.describe("SYNs per second"),
  service: service.default("tcp/443"),
  ...window,
  spoofed: z.boolean().default(true).describe("random source addresses (false: one attacker address)"),
  source: ipv4.optional().describe("the attacker's address when not spoofed"),
  answered: z.boolean().default(true).describe("the server answers each SYN with a SYN/ACK"),
  backscatter: z.number().min(0).max(1).default(0).describe("fraction of spoofed sources that exist and answer the SYN/ACK with a RST"),
});

const connFlood = z.strictObject({
  type: z.literal("connection-flood"),
  name: z.string().optional(),
  rate: rate.describe("full handshakes per second"),
  service: service.default("tcp/443"),
  ...window,
  bots: z.number().int().positive().default(1000).describe("attacking addresses"),
  hold: seconds.optional().describe("seconds each connection is held open before a FIN (default: held idle to the end)"),
});

const udpFlood = z.strictObject({
  type: z.literal("udp-flood"),
  name: z.string().optional(),
  rate: rate.describe("datagrams per second"),
  service: service.default("udp/53"),
  ...window,
  spoofed: z.boolean().default(true),
  size: z.number().int().min(0).max(1472).default(64),
});

const portScan = z.strictObject({
  type: z.literal("port-scan"),
  name: z.string().optional(),
  rate: rate.describe("probes (SYNs) per second"),
  ...window,
  source: ipv4.default("198.18.7.7"),
  ports: z
    .tuple([z.number().int().min(1).max(65535), z.number().int().min(1).max(65535)])
    .default([1, 65535])
    .describe("first and last port probed"),
});

const anyIp = z.string().refine(
  (s) => {
    try {
      parseIp(s);
      return true;
    } catch {
      return false;
    }
  },
  { error: "expected an IPv4 or IPv6 address" },
);

const capture = z.strictObject({
  type: z.literal("capture"),
  name: z.string().optional(),
  file: z.string().min(1).describe("a pcap or pcapng file (relative to the scenario file), replayed as traffic"),
  scale: z.number().positive().default(1).describe("time compression: 10 plays the capture ten times faster"),
  loop: z.boolean().default(true).describe("play the capture again when it ends, each pass with its addresses moved (new connections)"),
  keep: z.array(anyIp).default([]).describe("addresses a loop never moves (the host's address never moves)"),
  ...window,
});

const source = z.discriminatedUnion("type", [clients, dns, synFlood, connFlood, udpFlood, portScan, capture]);

export const scenarioSchema = z.strictObject({
  name: z.string().min(1).default("scenario"),
  description: z.string().optional(),
  seed: z.number().int().min(0).max(0xffffffff).default(1),
  duration: z
    .number()
    .positive()
    .max(30 * 86400)
    .describe("simulated seconds"),
  host: z
    .strictObject({
      address: ipv4.default("203.0.113.10").describe("the server's address (the tracking host)"),
      services: z.array(service).optional().describe("listening services; a closed port answers RST (default: every service the traffic uses)"),
      gateway: z
        .strictObject({
          lan: ipv4Prefix.default("192.168.0.0/16").describe("the LAN behind the gateway (on eth1, the gateway holding its first address)"),
          server: ipv4.default("198.51.100.10").describe("where the LAN's clients and dns sources connect, beyond the gateway (through eth0)"),
        })
        .optional()
        .describe(
          "the tracking host is a router between a LAN (eth1) and the outside (eth0, `address`): clients and dns sources are LAN hosts reaching `server` through it (with rules such as builtin:masquerade, NATed); floods and scans aim at `address`",
        ),
    })
    .default({ address: "203.0.113.10" }),
  table: z
    .record(z.string(), z.union([z.number(), z.string()]))
    .default({})
    .describe("conntrack sysctls, e.g. nf_conntrack_max: 262144 (timeouts in seconds, as in /proc)"),
  rules: z.string().optional().describe("a ruleset file (iptables-save or nft), relative to the scenario file"),
  events: z.boolean().default(false).describe("conntrack events on (adds the event extension to each entry's kernel memory)"),
  traffic: z.array(source).min(1).describe("traffic sources, running concurrently"),
});

/** A validated scenario with every default filled in. */
export type Scenario = z.output<typeof scenarioSchema>;
export type TrafficSource = Scenario["traffic"][number];
export type Loss = z.output<typeof loss>;

/** The JSON Schema of scenario files (generated from the zod definition). */
export function scenarioJsonSchema(): Record<string, unknown> {
  const s = z.toJSONSchema(scenarioSchema, { io: "input" }) as Record<string, unknown>;
  return { ...s, $id: "https://ctlab.dev/schema/scenario.schema.json", title: "ctlab simulate scenario" };
}

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  // undefined for functions and symbols (whatever the declared return type says): String() names those.
  const s = JSON.stringify(v) as string | undefined;
  // eslint-disable-next-line @typescript-eslint/no-base-to-string
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function valueAt(input: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = input;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/**
 * Validates a parsed scenario and the combinations a schema cannot express.
 * @throws ScenarioError naming the key, the value and what was expected
 */
export function validateScenario(input: unknown, where = "scenario"): Scenario {
  const r = scenarioSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    if (issue === undefined) throw new ScenarioError("", `Invalid ${where}`);
    const key = issue.path.map(String).join(".");
    let expected = issue.message;
    if (issue.code === "unrecognized_keys") {
      const k = issue.keys[0] ?? "";
      const full = key === "" ? k : `${key}.${k}`;
      throw new ScenarioError(full, `Invalid ${where}: unknown key "${full}"`);
    }
    if (issue.code === "invalid_union" && !key.endsWith("type") && issue.path.length > 0) expected = "expected one of the forms in the scenario schema";
    if (issue.code === "invalid_union" && (issue as { discriminator?: string }).discriminator !== undefined) {
      expected = "expected type to be one of clients, dns, syn-flood, connection-flood, udp-flood, port-scan, capture";
    }
    const value = valueAt(input, issue.path);
    throw new ScenarioError(key, `Invalid ${where}: "${key || "(top)"}" is ${describeValue(value)}: ${expected.replace(/^Invalid input: /, "")}`);
  }
  const s = r.data;
  try {
    resolveSysctls(s.table);
  } catch (e) {
    if (e instanceof SysctlError) throw new ScenarioError(`table.${e.key}`, `Invalid ${where}: table: ${e.message}`);
    throw e;
  }
  const gw = s.host.gateway;
  if (gw !== undefined) {
    const [net = "", len = "32"] = gw.lan.split("/");
    const size = 2 ** (32 - Number(len));
    const word = (a: string) => a.split(".").reduce((w, x) => ((w << 8) | Number(x)) >>> 0, 0);
    const inLan = (a: string) => (word(a) ^ word(net)) >>> 0 < size;
    if (inLan(s.host.address))
      throw new ScenarioError(
        "host.address",
        `Invalid ${where}: "host.address" is "${s.host.address}": a gateway's WAN address must lie outside its LAN ${gw.lan}`,
      );
    if (inLan(gw.server) || gw.server === s.host.address)
      throw new ScenarioError(
        "host.gateway.server",
        `Invalid ${where}: "host.gateway.server" is "${gw.server}": expected a server beyond the gateway (outside ${gw.lan}, not the gateway's own ${s.host.address})`,
      );
  }
  s.traffic.forEach((t, i) => {
    if (t.start >= s.duration)
      throw new ScenarioError(
        `traffic.${i}.start`,
        `Invalid ${where}: "traffic.${i}.start" is ${t.start}: expected a start before the end (duration ${s.duration})`,
      );
    if (t.end !== undefined && t.end <= t.start)
      throw new ScenarioError(`traffic.${i}.end`, `Invalid ${where}: "traffic.${i}.end" is ${t.end}: expected an end after the start (${t.start})`);
    if (t.type === "syn-flood" && !t.spoofed && t.source === undefined) {
      throw new ScenarioError(
        `traffic.${i}.source`,
        `Invalid ${where}: "traffic.${i}.source" is nothing: a flood that is not spoofed needs the attacker's address`,
      );
    }
    if (t.type === "port-scan" && t.ports[1] < t.ports[0])
      throw new ScenarioError(
        `traffic.${i}.ports`,
        `Invalid ${where}: "traffic.${i}.ports" is ${describeValue(t.ports)}: expected [first, last] with first ≤ last`,
      );
  });
  return s;
}

/**
 * Parses scenario YAML (or JSON) text.
 * @throws ScenarioError for YAML syntax errors (with line and column) and invalid scenarios
 */
export function parseScenario(text: string, where = "scenario"): Scenario {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    if (e instanceof YAMLParseError) {
      const pos = e.linePos?.[0];
      throw new ScenarioError("", `Invalid ${where}${pos ? ` at line ${pos.line}, column ${pos.col}` : ""}: ${e.message.split("\n")[0]}`);
    }
    throw e;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new ScenarioError("", `Invalid ${where}: expected a mapping of keys (name, duration, traffic, …)`);
  return validateScenario(doc, where);
}
