/**
 * The built-in scenarios of `ctlab simulate`, as the YAML a user would write
 * (so the report can show each one as run and users can copy one to start).
 */
import { parseScenario } from "./scenario.js";
import type { Scenario } from "./scenario.js";

export interface BuiltinScenario {
  name: string;
  /** One line for the list. */
  summary: string;
  yaml: string;
}

/** The seed's flood, shared by syn-flood and stateless (which NOTRACKs the same traffic). */
const SYN_FLOOD_TRAFFIC = `traffic:
  - type: clients
    rate: 200
    service: tcp/443
  - type: syn-flood
    rate: 50000
    start: 60
    spoofed: true
`;

export const BUILTIN_SCENARIOS: readonly BuiltinScenario[] = [
  {
    name: "story",
    summary: "the seed's story (npm start): a busy HTTPS + DNS server, a flaky link losing RSTs, then a SYN flood into a small table",
    yaml: `name: story
description: A busy HTTPS and DNS server. A flaky link loses half the RSTs that close one client population, leaving ESTABLISHED orphans; at 90 s a SYN flood fills the table.
seed: 1
duration: 180
table: { nf_conntrack_max: 32768, nf_conntrack_buckets: 8192 }
traffic:
  - type: clients
    name: https
    rate: 200
    service: tcp/443
    requests: 2
    think: 0.5
  - type: clients
    name: flaky-link
    rate: 40
    service: tcp/443
    close: rst
    loss: { rst: 0.5, where: before, direction: to-server }
  - type: dns
    rate: 100
  - type: syn-flood
    rate: 10000
    start: 90
    end: 150
    spoofed: true
`,
  },
  {
    name: "busy-server",
    summary: "a busy HTTPS server whose TIME_WAIT entries fill a small table at rush hour",
    yaml: `name: busy-server
description: A web server at 400 new connections per second with a ramp to 1 000; TIME_WAIT entries (120 s) fill a 65 536-entry table.
seed: 1
duration: 300
table: { nf_conntrack_max: 65536, nf_conntrack_buckets: 16384 }
traffic:
  - type: clients
    rate: 1000
    arrival: { ramp: { from: 0.4, to: 1 } }
    service: tcp/443
    requests: 3
    think: 0.5
`,
  },
  {
    name: "syn-flood",
    summary: "50 000 spoofed SYN/s from 60 s: the table fills, early drop keeps legitimate clients alive",
    yaml: `name: syn-flood
description: The seed's DDoS. Spoofed SYNs fill the table with SYN_RECV entries; early drop evicts them for new connections.
seed: 1
duration: 120
table: { nf_conntrack_max: 262144 }
${SYN_FLOOD_TRAFFIC}`,
  },
  {
    name: "connection-flood",
    summary: "a botnet holds full connections open: ASSURED entries early drop cannot evict, legitimate clients fail",
    yaml: `name: connection-flood
description: Completed handshakes held idle are ASSURED; once they fill the table, new SYNs are dropped and clients give up after their retries.
seed: 1
duration: 300
table: { nf_conntrack_max: 16384 }
traffic:
  - type: clients
    rate: 50
    service: tcp/443
  - type: connection-flood
    rate: 500
    start: 30
    bots: 2000
`,
  },
  {
    name: "lossy-rst",
    summary: "a flaky link eats 30 % of the closing RSTs: orphaned ESTABLISHED entries pile up for five days",
    yaml: `name: lossy-rst
description: Clients close with RST; 30 % of them are lost before the tracking host, so their entries stay ESTABLISHED (432 000 s).
seed: 1
duration: 600
table: { nf_conntrack_max: 65536 }
traffic:
  - type: clients
    rate: 200
    service: tcp/443
    close: rst
    loss: { rst: 0.3, where: before, direction: to-server }
`,
  },
  {
    name: "bad-nic",
    summary: "a bad switch or NIC drops 2 % of all packets and 20 % of FINs: retransmissions and orphans",
    yaml: `name: bad-nic
description: Loss of every kind before the tracking host; clients retransmit, some FIN exchanges never complete.
seed: 1
duration: 300
table: { nf_conntrack_max: 65536 }
traffic:
  - type: clients
    rate: 300
    service: tcp/443
    requests: 2
    loss: { all: 0.02, fin: 0.2, where: before }
`,
  },
  {
    name: "udp-flood",
    summary: "20 000 spoofed UDP datagrams/s at the DNS port: 30 s UNREPLIED entries crowd out real lookups",
    yaml: `name: udp-flood
seed: 1
duration: 120
table: { nf_conntrack_max: 262144 }
traffic:
  - type: dns
    rate: 300
  - type: udp-flood
    rate: 20000
    start: 30
    service: udp/53
`,
  },
  {
    name: "dns-server",
    summary: "a resolver's server: A and AAAA from one socket, 30 s entries, table sized for the peak",
    yaml: `name: dns-server
seed: 1
duration: 180
table: { nf_conntrack_max: 131072 }
traffic:
  - type: dns
    rate: 2000
    clients: 60000
    arrival: poisson
`,
  },
  {
    name: "nat-gateway",
    summary: "an office behind a MASQUERADE gateway: LAN clients NATed to one WAN address, source ports reused under TIME_WAIT get new ones",
    yaml: `name: nat-gateway
description: 1000 LAN hosts reach one HTTPS service and a resolver through a gateway that masquerades them to its WAN address. Every entry's reply tuple is the gateway's address; a source port another host's TIME_WAIT entry still holds is replaced by one NAT chooses.
seed: 1
duration: 240
host:
  address: 203.0.113.1
  gateway: { lan: 192.168.0.0/16, server: 198.51.100.10 }
table: { nf_conntrack_max: 65536 }
rules: builtin:masquerade
traffic:
  - type: clients
    rate: 400
    clients: 500
    service: tcp/443
    close: server-fin
  - type: dns
    rate: 50
    clients: 500
    service: udp/53
`,
  },
  {
    name: "port-scan",
    summary: "a SYN scan of every port: closed ports answer RST (the entry goes at once), open ones leave a 10 s CLOSE entry",
    yaml: `name: port-scan
seed: 1
duration: 120
host: { address: 203.0.113.10, services: [tcp/22, tcp/443] }
table: { nf_conntrack_max: 65536 }
traffic:
  - type: clients
    rate: 100
    service: tcp/443
  - type: port-scan
    rate: 5000
    start: 10
    source: 198.18.7.7
`,
  },
  {
    name: "stateless",
    summary: "the syn-flood server with stateless rules (NOTRACK): the table stays empty, the memory is reclaimed",
    yaml: `name: stateless
description: The same flood as syn-flood, the server's port 443 NOTRACKed in the raw table; run with --rules to compare with a stateful ruleset.
seed: 1
duration: 120
table: { nf_conntrack_max: 262144 }
rules: builtin:notrack-443
${SYN_FLOOD_TRAFFIC}`,
  },
];

/** Rulesets built-in scenarios refer to as `rules: builtin:NAME`. */
export const BUILTIN_RULESETS: Readonly<Record<string, string>> = {
  "notrack-443": `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p tcp --dport 443 -j NOTRACK
-A OUTPUT -p tcp --sport 443 -j NOTRACK
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp --dport 443 -j ACCEPT
COMMIT
`,
  masquerade: `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i eth1 -o eth0 -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o eth0 -j MASQUERADE
COMMIT
`,
  stateful: `*filter
:INPUT DROP [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -p tcp --dport 443 -m conntrack --ctstate NEW -j ACCEPT
-A INPUT -p udp --dport 53 -j ACCEPT
COMMIT
`,
};

export function findBuiltin(name: string): BuiltinScenario | undefined {
  return BUILTIN_SCENARIOS.find((b) => b.name === name);
}

export function builtinScenario(name: string): Scenario {
  const b = findBuiltin(name);
  if (b === undefined) throw new Error(`Unknown built-in scenario "${name}"`);
  return parseScenario(b.yaml, `built-in scenario "${name}"`);
}
