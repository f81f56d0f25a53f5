import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blockOfAddress, compareObserved, parseCtLine, parseEventLine } from "./compare.js";
import type { Observed } from "./compare.js";
import { prepareIp } from "./inject.js";
import { countingRuleset, zeroStates } from "./netns.js";
import { parseEvents, parseStats, parseTable } from "./kernel-run.js";

const TCP =
  "ipv4     2 tcp      6 119 TIME_WAIT src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080 src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000 [ASSURED] mark=0 use=1";
const ICMP =
  "ipv4     2 icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185 mark=0 use=1";

function observed(table: string[], events: string[] = []): Observed {
  return {
    table,
    events: events.map(parseEventLine),
    stats: { invalid: 0 },
    count: table.length,
    ctState: zeroStates(),
    groups: new Map(),
  };
}

describe("kernel comparison: parsing", () => {
  it("takes a TCP table line apart", () => {
    const l = parseCtLine(TCP);
    assert.equal(l.l3, "ipv4");
    assert.equal(l.proto, "tcp");
    assert.equal(l.timeout, 119);
    assert.equal(l.state, "TIME_WAIT");
    assert.equal(l.orig, "src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080");
    assert.equal(l.reply, "src=10.0.0.2 dst=10.0.0.1 sport=8080 dport=40000");
    assert.equal(l.assured, true);
    assert.equal(l.unreplied, false);
    assert.deepEqual(l.extra, ["mark=0"]);
  });

  it("keeps ICMP ids in both tuples", () => {
    const l = parseCtLine(ICMP);
    assert.equal(l.state, "");
    assert.equal(l.orig, "src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=17185");
    assert.equal(l.reply, "src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=17185");
    assert.equal(l.unreplied, true);
  });

  it("parses conntrack -E lines with timestamps and conntrack ids", () => {
    const ev = parseEvents(
      "[1795617927.853417]\t    [NEW] ipv4     2 icmp     1 30 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 id=3363784558\n",
    );
    assert.equal(ev.length, 1);
    assert.equal(ev[0]?.kind, "NEW");
    assert.equal(ev[0].id, "3363784558");
    assert.match(ev[0].line, /type=0 code=0 id=7$/);
    const e = parseEventLine(" [UPDATE] ipv4     2 tcp      6 60 SYN_RECV src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1");
    assert.equal(e.kind, "UPDATE");
    assert.equal(e.line.state, "SYN_RECV");
  });

  it("sums conntrack -S over CPUs and strips ids from -L", () => {
    const s = parseStats("cpu=0   \tfound=0 invalid=4 insert=0 drop=1 \ncpu=1   \tfound=0 invalid=2 insert=0 drop=0 \n");
    assert.deepEqual(s, { found: 0, invalid: 6, insert: 0, drop: 1 });
    assert.deepEqual(parseTable(`${ICMP} id=99\n`), [ICMP]);
  });

  it("attributes addresses to scenario blocks", () => {
    assert.equal(blockOfAddress("10.37.0.1"), 37);
    assert.equal(blockOfAddress("fd00:0:0:25::1"), 0x25);
    assert.equal(blockOfAddress("192.0.2.1"), undefined);
  });
});

describe("kernel comparison: differences", () => {
  it("finds nothing when only use=, id= and a small timeout drift differ", () => {
    const c = compareObserved(observed([TCP]), observed([TCP.replace("119", "120").replace("use=1", "use=2")]));
    assert.equal(c.identical, true);
  });

  it("lets the kernel's table timeouts be lower by the time its entries aged during injection, never higher", () => {
    const aged = (sec: number) => ({ ...observed([TCP.replace(" 119 ", " 111 ")]), agedSec: sec });
    assert.equal(compareObserved(aged(0), observed([TCP.replace(" 119 ", " 120 ")])).identical, false);
    assert.equal(compareObserved(aged(6), observed([TCP.replace(" 119 ", " 120 ")])).identical, true);
    assert.equal(compareObserved(aged(6), observed([TCP.replace(" 119 ", " 100 ")])).identical, false, "kernel higher than ctlab");
  });

  it("reports state, flag and timeout differences by flow", () => {
    const c = compareObserved(observed([TCP]), observed([TCP.replace("TIME_WAIT", "CLOSE").replace(" 119 ", " 10 ").replace(" [ASSURED]", "")]));
    assert.equal(c.identical, false);
    const msg = c.differences[0]?.message ?? "";
    assert.match(msg, /state "TIME_WAIT" vs "CLOSE"/);
    assert.match(msg, /\[ASSURED\] true vs false/);
    assert.match(msg, /timeout "119" vs "10"/);
    assert.equal(c.differences[0]?.flow, "ipv4 tcp src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=8080");
  });

  it("names the first differing event of a flow", () => {
    const a = "[NEW] ipv4     2 udp      17 30 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 [UNREPLIED] src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1";
    const b = "[UPDATE] ipv4     2 udp      17 30 src=1.1.1.1 dst=2.2.2.2 sport=1 dport=2 src=2.2.2.2 dst=1.1.1.1 sport=2 dport=1";
    const c = compareObserved(observed([], [a, b]), observed([], [a]));
    assert.equal(c.differences.length, 1);
    assert.match(c.differences[0]?.message ?? "", /event #2 of 2\/1 differs/);
  });

  it("reports entries only one side has, and counter differences", () => {
    const k = observed([TCP]);
    const c = observed([]);
    c.stats = { invalid: 3 };
    const r = compareObserved(k, c);
    const aspects = r.differences.map((d) => d.aspect).sort();
    assert.deepEqual(aspects, ["count", "stats", "table"]);
  });
});

describe("kernel harness: re-framing rules", () => {
  it("raises TTL 1, fixes the header checksum and remaps loopback", () => {
    // 127.0.0.1 → 127.0.0.1, TTL 1, proto UDP, 8 bytes of UDP.
    const ip = Uint8Array.from([0x45, 0, 0, 28, 0, 0, 0, 0, 1, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1, 0, 1, 0, 2, 0, 8, 0, 0]);
    const p = prepareIp(ip);
    assert.ok(typeof p !== "string");
    assert.equal(p.ip[8], 64);
    assert.equal(p.ttlRaised, true);
    assert.equal(p.remapped, true);
    assert.deepEqual([...p.ip.subarray(12, 20)], [198, 18, 0, 1, 198, 18, 0, 1]);
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += ((p.ip[i] as number) << 8) | (p.ip[i + 1] as number);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    assert.equal(sum, 0xffff);
  });

  it("leaves out multicast and truncated packets", () => {
    const mc = Uint8Array.from([0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 224, 0, 0, 251]);
    assert.equal(prepareIp(mc), "v4 multicast");
    const cut = Uint8Array.from([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    assert.equal(prepareIp(cut), "truncated");
  });

  it("counts per ct state in a prerouting chain and per group", () => {
    const text = countingRuleset([{ name: "g1", v4: ["10.1.0.0/16"], v6: ["fd00:0:0:1::/64"] }]);
    assert.match(text, /ct state invalid counter comment "all:invalid"/);
    assert.match(text, /ip saddr 10\.1\.0\.0\/16 jump g_g1/);
    assert.match(text, /ip6 saddr fd00:0:0:1::\/64 jump g_g1/);
    assert.match(text, /hook ingress device "r0"/);
  });
});
