/**
 * NAT as nf_nat does it: bindings on the first packet, port selection and
 * clashes (get_unique_tuple / nf_nat_l4proto_unique_tuple), reuse of a
 * source's mapping, address ranges, MASQUERADE/REDIRECT addresses, and the
 * reply tuples `conntrack -L` shows.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { IPS } from "../../src/conntrack/constants.js";
import { VERDICT } from "../../src/firewall/eval.js";
import { jhash2, reciprocalScale } from "../../src/firewall/nat.js";
import { DROP_REASON } from "../../src/firewall/path.js";
import { ipt, rig } from "./path-helpers.js";
import { entryOf } from "../conntrack/helpers.js";

const SERVER = "198.51.100.7";
const GW = ["eth0=203.0.113.1/24", "eth1=192.168.10.1/24"];
const HOST = { defaultIface: "eth0" };

function masq(extra = ""): string {
  // Port ranges need a protocol match: one rule per protocol then.
  if (extra.includes("--to-ports")) return ipt({ nat: ["tcp", "udp"].map((p) => `-A POSTROUTING -o eth0 -p ${p} -j MASQUERADE${extra}`) });
  return ipt({ nat: [`-A POSTROUTING -o eth0 -j MASQUERADE${extra}`] });
}

/** A counter standing for get_random_u16, so port searches are reproducible. */
function counterRandom(start = 0): () => number {
  let x = start;
  return () => x++ >>> 0;
}

describe("MASQUERADE and SNAT port selection", () => {
  it("keeps the source port when the tuple is unique; the reply goes to the interface address", () => {
    const fw = rig(masq(), { local: GW, host: HOST });
    const r = fw.tcp({ src: "192.168.10.5", dst: SERVER, sport: 40000, dport: 443, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.equal(fw.view.src[0], 0xcb007101);
    assert.equal(fw.view.sport, 40000);
    assert.deepEqual(fw.table(), [
      "tcp      6 120 SYN_SENT src=192.168.10.5 dst=198.51.100.7 sport=40000 dport=443 [UNREPLIED] src=198.51.100.7 dst=203.0.113.1 sport=443 dport=40000",
    ]);
    const st = entryOf(fw.tr, r.slot).status;
    assert.equal(st & (IPS.SRC_NAT | IPS.SRC_NAT_DONE | IPS.DST_NAT_DONE), IPS.SRC_NAT | IPS.SRC_NAT_DONE | IPS.DST_NAT_DONE);
    assert.equal(st & IPS.DST_NAT, 0);
    assert.equal(fw.tr.stats.found, 0);
    // The reply is translated back before routing and forwarded to the LAN host.
    const back = fw.tcp({ src: SERVER, dst: "203.0.113.1", sport: 443, dport: 40000, flags: "SA", seq: 9, ack: 2 });
    assert.equal(back.route, 1);
    assert.equal(fw.view.dst[0], 0xc0a80a05);
    assert.equal(fw.view.dport, 40000);
  });

  it("searches another port when the tuple is taken, counting found once per taken candidate", () => {
    const fw = rig(masq(), { local: GW, host: HOST, random32: counterRandom(5000) });
    fw.tcp({ src: "192.168.10.5", dst: SERVER, sport: 40000, dport: 443, flags: "S", seq: 1 });
    const r = fw.tcp({ src: "192.168.10.6", dst: SERVER, sport: 40000, dport: 443, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    // min 1024 + offset 5000 (the first random draw) % range.
    assert.equal(fw.view.sport, 1024 + 5000);
    assert.equal(fw.tr.stats.found, 1);
    assert.equal(fw.path.nat.counters.searched, 1);
    assert.equal(fw.tr.count, 2);
  });

  it("keeps privileged ports privileged: below 512 → 1–511, 512–1023 → 600–1023", () => {
    const fw = rig(masq(), { local: GW, host: HOST, random32: counterRandom(70000) });
    for (const h of [5, 6]) fw.udp({ src: `192.168.10.${h}`, dst: SERVER, sport: 123, dport: 123, payload: 48 });
    assert.equal(fw.view.sport, 1 + ((70000 & 0xffff) % 511));
    for (const h of [5, 6]) fw.udp({ src: `192.168.10.${h}`, dst: SERVER, sport: 700, dport: 123, payload: 48 });
    const p = fw.view.sport;
    assert.ok(p >= 600 && p <= 1023, `port ${p}`);
  });

  it("--to-ports moves every port into the range, keeping one already in it", () => {
    const fw = rig(masq(" --to-ports 2000-2099"), { local: GW, host: HOST });
    fw.udp({ src: "192.168.10.5", dst: SERVER, sport: 2050, dport: 53 });
    assert.equal(fw.view.sport, 2050);
    fw.udp({ src: "192.168.10.5", dst: SERVER, sport: 40000, dport: 53 });
    // Typed number: TypeScript still holds the 2050 asserted above, the rewrite is unseen.
    const moved: number = fw.view.sport;
    assert.ok(moved >= 2000 && moved <= 2099);
  });

  it("drops at confirmation when no tuple is free: insert_failed and drop, no entry", () => {
    const fw = rig(masq(" --to-ports 1000-1001"), { local: GW, host: HOST });
    const v: number[] = [];
    for (const h of [5, 6, 7]) v.push(fw.tcp({ src: `192.168.10.${h}`, dst: SERVER, sport: 40000, dport: 80, flags: "S", seq: 1 }).verdict);
    assert.deepEqual(v, [VERDICT.ACCEPT, VERDICT.ACCEPT, VERDICT.DROP]);
    assert.equal(fw.path.result.dropReason, DROP_REASON.CONFIRM);
    assert.equal(fw.tr.count, 2);
    assert.equal(fw.tr.stats.insert_failed, 1);
    assert.equal(fw.tr.stats.drop, 1);
    assert.equal(fw.path.nat.counters.exhausted, 1);
  });

  it("in the last attempts evicts a TIME_WAIT entry whose sequence the new SYN has passed (nf_nat_used_tuple_harder)", () => {
    const fw = rig(masq(" --to-ports 1000-1001"), { local: GW, host: HOST });
    /** A whole connection from LAN host h, its client sequence starting at seq, closed into TIME_WAIT. */
    const closed = (h: number, seq: number): number => {
      const c = { src: `192.168.10.${h}`, dst: SERVER, sport: 40000, dport: 80 };
      fw.tcp({ ...c, flags: "S", seq });
      const port = fw.view.sport;
      const s = { src: SERVER, dst: "203.0.113.1", sport: 80, dport: port };
      fw.tcp({ ...s, flags: "SA", seq: 5000, ack: seq + 1 });
      fw.tcp({ ...c, flags: "A", seq: seq + 1, ack: 5001 });
      fw.tcp({ ...c, flags: "FA", seq: seq + 1, ack: 5001 });
      fw.tcp({ ...s, flags: "FA", seq: 5001, ack: seq + 2 });
      fw.tcp({ ...c, flags: "A", seq: seq + 2, ack: 5002 });
      return port;
    };
    const ports = [closed(5, 100), closed(6, 100)].sort();
    assert.deepEqual(ports, [1000, 1001]);
    assert.equal(fw.table().filter((l) => l.includes("TIME_WAIT")).length, 2);
    // Sequence not past the old entries' (100 + 2): both stay, the SYN is dropped at confirmation.
    assert.equal(fw.tcp({ src: "192.168.10.7", dst: SERVER, sport: 40000, dport: 80, flags: "S", seq: 50 }).verdict, VERDICT.DROP);
    assert.equal(fw.tr.count, 2);
    // Past them: the TIME_WAIT entry holding the candidate is evicted and its port reused.
    fw.events.lines.length = 0;
    const r = fw.tcp({ src: "192.168.10.7", dst: SERVER, sport: 40000, dport: 80, flags: "S", seq: 1_000_000 });
    assert.equal(r.verdict, VERDICT.ACCEPT);
    assert.ok(ports.includes(fw.view.sport));
    assert.equal(fw.tr.count, 2);
    const t = fw.table();
    assert.equal(t.filter((l) => l.includes("TIME_WAIT")).length, 1, t.join("\n"));
    assert.ok(
      t.some((l) => l.startsWith(`tcp      6 120 SYN_SENT src=192.168.10.7`) && l.endsWith(`dport=${fw.view.sport}`)),
      t.join("\n"),
    );
    assert.equal(fw.events.lines.filter((l) => l.startsWith("[DESTROY]")).length, 1, fw.events.lines.join("\n"));
  });

  it("reuses a source's existing mapping for its next connection (find_appropriate_src)", () => {
    const fw = rig(masq(), { local: GW, host: HOST, random32: counterRandom(3000) });
    fw.udp({ src: "192.168.10.6", dst: SERVER, sport: 5000, dport: 53 });
    fw.udp({ src: "192.168.10.5", dst: SERVER, sport: 5000, dport: 53 });
    const mapped = fw.view.sport;
    assert.notEqual(mapped, 5000);
    fw.udp({ src: "192.168.10.5", dst: "198.51.100.99", sport: 5000, dport: 53 });
    assert.equal(fw.view.sport, mapped);
  });

  it("--random-fully picks a port even when the original one is free", () => {
    const fw = rig(masq(" --random-fully"), { local: GW, host: HOST, random32: counterRandom(100) });
    fw.tcp({ src: "192.168.10.5", dst: SERVER, sport: 40000, dport: 443, flags: "S", seq: 1 });
    assert.equal(fw.view.sport, 1024 + 100);
  });

  it("ICMP echo ids are kept, or searched like ports on a clash", () => {
    const fw = rig(masq(), { local: GW, host: HOST, random32: counterRandom(9) });
    fw.icmp({ src: "192.168.10.5", dst: SERVER, id: 77, seq: 1 });
    assert.equal(fw.view.icmpId, 77);
    fw.icmp({ src: "192.168.10.6", dst: SERVER, id: 77, seq: 1 });
    assert.equal(fw.view.icmpId, 9);
    assert.ok(
      fw.table().some((l) => l.includes("src=198.51.100.7 dst=203.0.113.1 type=0 code=0 id=9")),
      fw.table().join("\n"),
    );
  });

  it("SNAT to an address range picks by jhash2 of the addresses; --persistent ignores the destination", () => {
    const text = ipt({
      nat: [
        "-A POSTROUTING -s 10.9.0.0/16 -j SNAT --to-source 203.0.113.100-203.0.113.120",
        "-A POSTROUTING -s 10.8.0.0/16 -j SNAT --to-source 203.0.113.100-203.0.113.120 --persistent",
      ],
    });
    const fw = rig(text);
    const pick = (src: string, dst: string) => {
      fw.udp({ src, dst, sport: 1000 + fw.tr.count, dport: 53 });
      return fw.view.src[0]! - 0xcb007164;
    };
    const a = pick("10.8.1.1", "198.51.100.1");
    assert.equal(pick("10.8.1.1", "198.51.100.2"), a);
    assert.equal(pick("10.8.1.1", "198.51.100.3"), a);
    const seen = new Set<number>();
    for (let d = 1; d <= 20; d++) seen.add(pick("10.9.1.1", `198.51.100.${d}`));
    assert.ok(seen.size > 3, `non-persistent choices vary with the destination: ${[...seen].join(",")}`);
    for (const x of seen) assert.ok(x >= 0 && x <= 20);
  });
});

describe("DNAT and REDIRECT", () => {
  it("REDIRECT sends to the first address of the input interface, with the given port", () => {
    const text = ipt({ nat: ["-A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 3128"] });
    const fw = rig(text, { local: ["eth1=192.168.10.1/24", "eth1=192.168.10.2/24"] });
    const r = fw.tcp({ src: "192.168.10.5", dst: SERVER, sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(r.route, 0);
    assert.equal(fw.view.dst[0], 0xc0a80a01);
    assert.equal(fw.view.dport, 3128);
  });

  it("MASQUERADE with no address to use drops the packet", () => {
    const fw = rig(masq());
    const r = fw.tcp({ src: "192.168.10.5", dst: SERVER, sport: 40000, dport: 443, flags: "S", seq: 1 });
    assert.equal(r.verdict, VERDICT.DROP);
    assert.equal(r.dropReason, DROP_REASON.NAT);
    assert.equal(fw.tr.count, 0);
  });

  it("NAT chains see only the first packet of a connection", () => {
    const text = ipt({ nat: ["-A PREROUTING -p udp -j DNAT --to-destination 10.0.0.5"] });
    const fw = rig(text);
    for (let i = 0; i < 3; i++) fw.udp({ src: "192.168.10.5", dst: SERVER, sport: 5000, dport: 53 });
    fw.udp({ src: "10.0.0.5", dst: "192.168.10.5", sport: 53, dport: 5000 });
    assert.equal(fw.rule("PREROUTING", 0, "nat").counters.packets, 1);
    assert.equal(fw.chain("POSTROUTING", "nat").policyCounters.packets, 1);
    assert.equal(fw.tr.count, 1);
  });

  it("two original tuples translated onto one reply tuple: the null binding of the second moves its source port", () => {
    const text = ipt({ nat: ["-A PREROUTING -p tcp -j DNAT --to-destination 10.0.0.5"] });
    const fw = rig(text, { random32: counterRandom(1) });
    fw.tcp({ src: "192.168.10.5", dst: "198.51.100.1", sport: 40000, dport: 80, flags: "S", seq: 1 });
    fw.tcp({ src: "192.168.10.5", dst: "198.51.100.2", sport: 40000, dport: 80, flags: "S", seq: 1 });
    assert.equal(fw.tr.count, 2);
    assert.equal(fw.view.sport, 1025);
    const st = entryOf(fw.tr, fw.path.result.slot).status;
    assert.equal(st & (IPS.SRC_NAT | IPS.DST_NAT), IPS.SRC_NAT | IPS.DST_NAT);
  });
});

describe("invariants", () => {
  it("no two entries share a reply tuple, and translated ports stay in the range (property)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            host: fc.integer({ min: 2, max: 6 }),
            sport: fc.constantFrom(1000, 2000, 40000, 40001),
            server: fc.integer({ min: 1, max: 2 }),
            proto: fc.constantFrom("tcp", "udp"),
          }),
          { minLength: 1, maxLength: 60 },
        ),
        fc.integer({ min: 0, max: 0xffff }),
        (flows, seed) => {
          const fw = rig(masq(" --to-ports 5000-5015"), { local: GW, host: HOST, random32: counterRandom(seed) });
          let accepted = 0;
          for (const f of flows) {
            const o = { src: `192.168.10.${f.host}`, dst: `198.51.100.${f.server}`, sport: f.sport, dport: 443 };
            const r = f.proto === "tcp" ? fw.tcp({ ...o, flags: "S", seq: 1 }) : fw.udp(o);
            if (r.verdict === VERDICT.ACCEPT) accepted++;
          }
          const replies = fw.table().map((l) => `${l.split(" ")[0]} ${l.slice(l.lastIndexOf("src="))}`);
          assert.equal(new Set(replies).size, replies.length, replies.join("\n"));
          for (const r of replies) {
            const port = Number(/dport=(\d+)/.exec(r)![1]);
            assert.ok(port >= 5000 && port <= 5015, r);
          }
          assert.equal(fw.tr.count + fw.tr.stats.insert_failed, new Set(flows.map((f) => `${f.proto} ${f.host} ${f.sport} ${f.server}`)).size);
          assert.ok(accepted <= flows.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("reciprocal_scale is ⌊val × n / 2^32⌋ exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff }), (v, n) => {
        assert.equal(reciprocalScale(v, n), Number((BigInt(v) * BigInt(n)) >> 32n));
      }),
    );
  });

  it("jhash2 mixes every word and the initial value", () => {
    const k = Uint32Array.of(1, 2, 3, 4);
    const h = jhash2(k, 4, 0);
    assert.notEqual(jhash2(Uint32Array.of(1, 2, 3, 5), 4, 0), h);
    assert.notEqual(jhash2(k, 4, 1), h);
    assert.equal(jhash2(k, 4, 0), h);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
  });
});
