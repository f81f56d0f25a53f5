/**
 * Capture traffic over IPv6: each pass of a looped capture moves every
 * address not kept by the pass number in its second 32-bit word, and the
 * TCP, UDP and ICMPv6 checksums (over the IPv6 pseudo-header) stay right.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildIcmp, buildTcp, buildUdp } from "../../src/packet/build.js";
import { l4ChecksumOk } from "../../src/packet/checksum.js";
import { forEachPacketSync } from "../../src/packet/source.js";
import { PcapWriter } from "../../src/packet/writer.js";
import { runScenario } from "../../src/sim/engine.js";
import { validateScenario } from "../../src/sim/scenario.js";

const SERVER = "2001:db8::10";
const CLIENTS = ["2001:db8:1:2::5", "2001:db8:1:2::6", "fd00:ab:cd:ef::7"];

/** One pass: per client a TCP handshake with data, a UDP query and answer, an ICMPv6 echo and reply; 10 ms apart, ~0.3 s. */
function writeCapture(path: string): number {
  const w = new PcapWriter(path);
  let us = 0;
  let n = 0;
  const put = (f: Uint8Array) => {
    w.writePacket(1_700_000_000 + Math.floor(us / 1e6), (us % 1e6) * 1000, f);
    us += 10_000;
    n++;
  };
  CLIENTS.forEach((c, i) => {
    const cp = 40000 + i;
    put(buildTcp({ src: c, dst: SERVER, sport: cp, dport: 443, flags: "S", seq: 100, win: 64240 }));
    put(buildTcp({ src: SERVER, dst: c, sport: 443, dport: cp, flags: "SA", seq: 900, ack: 101, win: 65160 }));
    put(buildTcp({ src: c, dst: SERVER, sport: cp, dport: 443, flags: "A", seq: 101, ack: 901, win: 502 }));
    put(buildTcp({ src: c, dst: SERVER, sport: cp, dport: 443, flags: "PA", seq: 101, ack: 901, win: 502, payload: 300 }));
    put(buildTcp({ src: SERVER, dst: c, sport: 443, dport: cp, flags: "PA", seq: 901, ack: 401, win: 509, payload: 1200 }));
    put(buildUdp({ src: c, dst: SERVER, sport: 50000 + i, dport: 53, payload: 40 }));
    put(buildUdp({ src: SERVER, dst: c, sport: 53, dport: 50000 + i, payload: 120 }));
    put(buildIcmp({ src: c, dst: SERVER, id: 7 + i, seq: 1, payload: 32 }));
    put(buildIcmp({ src: SERVER, dst: c, id: 7 + i, seq: 1, type: 129, payload: 32 }));
  });
  w.close();
  return n;
}

test("capture source over IPv6: each pass moves the clients' second word, keeps the server, and every checksum stays right", () => {
  const dir = mkdtempSync(join(tmpdir(), "sim-cap6-"));
  try {
    const pcap = join(dir, "v6.pcap");
    const perPass = writeCapture(pcap);
    // Checksums are verified: a rotated packet with a wrong one would be INVALID and make no entry.
    const table = { nf_conntrack_checksum: 1, nf_conntrack_max: 5000 };
    const once = runScenario(validateScenario({ duration: 1, table, traffic: [{ type: "capture", file: pcap, loop: false, keep: [SERVER] }] }));
    assert.equal(once.tracker.count, 9);
    assert.equal(once.summary.invalid, 0);

    // The pass spans 0.26 s (+ one mean gap): 3 whole passes in 1 s at scale 1.
    const out = join(dir, "looped.pcap");
    const r = runScenario(validateScenario({ duration: 1, table, traffic: [{ type: "capture", file: pcap, keep: [SERVER] }] }), {}, { writePcap: out });
    assert.equal(r.summary.invalid, 0);
    const passes = Math.floor(r.summary.packets / perPass);
    assert.ok(passes >= 3, `${r.summary.packets} packets`);
    assert.ok(r.tracker.count >= 9 * passes, `${r.tracker.count} entries for ${passes} passes: every pass makes its own`);
    for (const l of r.tracker.formatTable({ extended: true })) assert.ok(l.includes(`dst=${SERVER}`) || l.includes(`src=${SERVER}`), l);

    const seen: Array<{ src: number[]; dst: number[]; ok: boolean }> = [];
    forEachPacketSync(out, (v) => {
      seen.push({ src: [...v.src], dst: [...v.dst], ok: l4ChecksumOk(v) });
    });
    assert.equal(seen.length, r.summary.packets);
    assert.ok(
      seen.every((p) => p.ok),
      "every rotated TCP, UDP and ICMPv6 checksum verifies",
    );
    const server = [0x20010db8, 0, 0, 0x10];
    for (let pass = 0; pass < passes; pass++) {
      for (let i = 0; i < perPass; i++) {
        const a = seen[i] as { src: number[]; dst: number[] };
        const b = seen[pass * perPass + i] as { src: number[]; dst: number[] };
        const fromClient = (a.dst[3] ?? 0) >>> 0 === 0x10 && a.dst[0] === server[0];
        const [ca, cb, sa, sb] = fromClient ? [a.src, b.src, a.dst, b.dst] : [a.dst, b.dst, a.src, b.src];
        assert.deepEqual(sb, sa, "the kept server never moves");
        assert.equal(cb[0], ca[0]);
        assert.equal(cb[1], ((ca[1] ?? 0) + pass) >>> 0, `pass ${pass}: the second word moves by the pass number`);
        assert.equal(cb[2], ca[2]);
        assert.equal(cb[3], ca[3]);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
