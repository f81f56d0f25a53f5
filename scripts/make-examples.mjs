#!/usr/bin/env node
// Writes the files the README's examples use into examples/, with ctlab's own
// frame builder (run after `npm run build`; the result is committed, and
// test/readme.test.ts checks that this script still writes the same bytes):
//   capture.pcap     a LAN host out through a MASQUERADE gateway, a port forward
//                    from the Internet, a SYN to a closed port, a DNS query to the gateway
//   rules.v4         the gateway's iptables-save (test/firewall/rulesets/nat-gateway.rules)
//   new.rules        rules.v4 with the port-forward accept narrowed to tcp port 22
//   stateless.rules  a ruleset that registers no conntrack (test/firewall/rulesets/stateless.rules)
//   ruleset.json     the gateway as `nft -j list ruleset` (test/firewall/rulesets/nat-gateway.nft.json)
//   nftables.conf    a small nft text ruleset (read through the real nft: needs root)
//   bad.rules, bad.json  rulesets with an error, for the README's error examples
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { buildTcp, buildUdp } = await import(join(root, "dist/src/packet/build.js"));
const { PcapWriter } = await import(join(root, "dist/src/packet/writer.js"));
const out = process.argv[2] ?? join(root, "examples");

const lan = { src: "192.168.10.5", dst: "198.51.100.7", sport: 40000, dport: 443 };
const web = { src: "198.51.100.9", dst: "203.0.113.1", sport: 50000, dport: 80 };
const frames = [
  buildTcp({ ...lan, flags: "S", seq: 1000, win: 64240 }),
  // The reply as it reaches the gateway's outside: to its own address (MASQUERADE).
  buildTcp({ src: "198.51.100.7", dst: "203.0.113.1", sport: 443, dport: 40000, flags: "SA", seq: 5000, ack: 1001, win: 65160 }),
  buildTcp({ ...lan, flags: "A", seq: 1001, ack: 5001, win: 64240 }),
  buildTcp({ ...web, flags: "S", seq: 7000, win: 64240 }),
  buildTcp({ src: "192.168.10.10", dst: "198.51.100.9", sport: 80, dport: 50000, flags: "SA", seq: 9000, ack: 7001, win: 65160 }),
  buildTcp({ ...web, flags: "A", seq: 7001, ack: 9001, win: 64240 }),
  buildTcp({ src: "198.51.100.9", dst: "203.0.113.1", sport: 50001, dport: 25, flags: "S", seq: 7000, win: 64240 }),
  buildUdp({ src: "192.168.10.6", dst: "192.168.10.1", sport: 41000, dport: 53, payload: 30 }),
];
const chunks = [];
const w = new PcapWriter((c) => chunks.push(c));
frames.forEach((f, i) => w.writePacket(1_795_600_000, i * 1_000_000, f));
w.close();
writeFileSync(join(out, "capture.pcap"), Buffer.concat(chunks));

const rs = join(root, "test/firewall/rulesets");
copyFileSync(join(rs, "nat-gateway.rules"), join(out, "rules.v4"));
copyFileSync(join(rs, "stateless.rules"), join(out, "stateless.rules"));
copyFileSync(join(rs, "nat-gateway.nft.json"), join(out, "ruleset.json"));
const narrowed = readFileSync(join(rs, "nat-gateway.rules"), "utf8").replace(
  "-A FORWARD -i eth0 -o eth1 -m conntrack --ctstate DNAT -j ACCEPT",
  "-A FORWARD -i eth0 -o eth1 -p tcp -m tcp --dport 22 -m conntrack --ctstate DNAT -j ACCEPT",
);
writeFileSync(join(out, "new.rules"), narrowed);
writeFileSync(join(out, "bad.rules"), "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPTT\nCOMMIT\n");
writeFileSync(
  join(out, "bad.json"),
  '{"nftables": [{"table": {"family": "ip", "name": "t"}}, {"chain": {"family": "ip", "table": "t", "name": "c", "type": "filter", "hook": "nowhere", "prio": 0, "policy": "accept"}}]}\n',
);
writeFileSync(
  join(out, "nftables.conf"),
  [
    "table inet filter {",
    "\tchain input {",
    "\t\ttype filter hook input priority filter; policy drop;",
    "\t\tct state established,related accept",
    "\t\tiif lo accept",
    "\t\tudp dport 53 accept",
    "\t\ttcp dport 22 accept",
    "\t}",
    "}",
    "",
  ].join("\n"),
);
