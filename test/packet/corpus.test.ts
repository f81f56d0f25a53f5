/**
 * Every capture of the shared corpus must parse completely, with the record
 * count of its MANIFEST, and the facts the MANIFEST measured (VLAN-tagged
 * packets, fragments, decodable ICMP errors) must come out of the decoder.
 * The delivered-packet counts of the fragment captures were checked against
 * a Linux 6.18 router namespace (nft counters at prerouting after nf_defrag).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { forEachPacketSync } from "../../src/packet/source.js";
import { CORPUS_DIR, corpusEntries } from "./helpers.js";

const entries = corpusEntries();
const manifest = entries === null ? "" : readFileSync(join(CORPUS_DIR, "MANIFEST.md"), "utf8");

function manifestLine(file: string): string {
  return manifest.split("\n").find((l) => l.includes("`" + file + "`")) ?? "";
}

describe("shared corpus", () => {
  if (entries === null) {
    it("is absent: SKIPPED, corpus tests did not run", (t) => {
      console.warn(`corpus not found at ${CORPUS_DIR}: skipping the real-capture tests`);
      t.skip(`no corpus at ${CORPUS_DIR}`);
    });
    return;
  }

  it("lists 76 captures", () => {
    assert.equal(entries.length, 76);
  });

  for (const e of entries) {
    it(`${e.file}: ${e.packets} records, format ${e.format}, no capture error`, () => {
      const s = forEachPacketSync(join(CORPUS_DIR, e.file), () => {});
      assert.equal(s.error, null, s.error?.message);
      assert.equal(s.records, e.packets);
      assert.equal(s.format, e.format);
    });
  }

  it("measured facts: VLAN-tagged packets, fragments, decodable ICMP errors", () => {
    let checked = 0;
    for (const e of entries) {
      const line = manifestLine(e.file);
      const vl = /(\d+) VLAN-tagged pkts/.exec(line);
      const fr = /(\d+)\/(\d+) v4\/v6 fragment pkts/.exec(line);
      const ie = /(\d+) ICMP errors quote a flow/.exec(line);
      if (vl === null && fr === null && ie === null) continue;
      let vlan = 0;
      let f4 = 0;
      let f6 = 0;
      let inner = 0;
      forEachPacketSync(
        join(CORPUS_DIR, e.file),
        (v) => {
          if (v.vlanTags > 0) vlan++;
          if (v.family === 4 && v.isFragment) f4++;
          if (v.family === 6 && v.fragHdrOff >= 0) f6++;
          if (v.innerOk) inner++;
        },
        { defrag: false },
      );
      if (vl !== null) assert.equal(vlan, Number(vl[1]), `${e.file} VLAN`);
      if (fr !== null) {
        assert.equal(f4, Number(fr[1]), `${e.file} IPv4 fragments`);
        // defrag-spray: 32 IPv6 fragments have a multicast source, which ip6_rcv_core() drops.
        const want6 = e.file === "suricata-verify/defrag-spray.pcap" ? Number(fr[2]) - 32 : Number(fr[2]);
        assert.equal(f6, want6, `${e.file} IPv6 fragments`);
      }
      // The MANIFEST counts errors that quote a flow of the same file: a lower bound.
      if (ie !== null) assert.ok(inner >= Number(ie[1]), `${e.file} ICMP errors ${inner} < ${ie[1]}`);
      checked++;
    }
    assert.ok(checked >= 25);
  });

  it("reassembles the fragment captures as the 6.18 kernel does", () => {
    const cases: Array<[string, number, number, Record<string, number>]> = [
      ["zeek/ipv4-fragmented-3.pcap", 0, 0, { held: 5 }],
      ["zeek/ipv4-fragmented-4.pcap", 2, 0, { overlap: 4 }],
      ["zeek/ipv6-fragmented-dns.pcap", 0, 5, { reassembled: 1, held: 1 }],
      ["PcapPlusPlus/ip4_fragments.pcap", 9, 0, { reassembled: 6, duplicate: 12, held: 2 }],
      ["PcapPlusPlus/ip6_fragments.pcap", 0, 4, { reassembled: 4 }],
      ["nDPI/dns_fragmented.pcap", 18, 41, { reassembled: 7 }],
      ["tcpdump/afs.pcap", 452, 0, { reassembled: 51 }],
      ["suricata-verify/defrag-spray.pcap", 4096, 4080, { reassembled: 8176 }],
    ];
    for (const [file, v4, v6, facts] of cases) {
      const s = forEachPacketSync(join(CORPUS_DIR, file), () => {});
      const f = s.fragments;
      assert.ok(f !== null);
      assert.deepEqual([s.ipv4, s.ipv6], [v4, v6], file);
      const got: Record<string, number> = { reassembled: f.reassembled, held: f.held, ...f.dropped };
      for (const [k, n] of Object.entries(facts)) assert.equal(got[k], n, `${file} ${k}`);
    }
  });

  it("sees the link types the MANIFEST names", () => {
    const want: Record<string, number[]> = {
      "zeek/linux_dlt_sll2.pcap": [276],
      "zeek/tcp-syslog.pcap": [228],
      "suricata-verify/http-ipv6-null.pcap": [0],
      "PcapPlusPlus/four_ipv6_http_streams.pcap": [12],
      "PcapPlusPlus/raw_ip.pcap": [101],
      "PcapPlusPlus/pcapng-example.pcapng": [1, 113],
      "PcapPlusPlus/many_interfaces-1.pcapng": [0, 1],
      "suricata-verify/defrag-ipv6-tcp-linktype-229.pcap": [229],
      "nDPI/KakaoTalk_talk.pcap": [113],
    };
    for (const [file, lts] of Object.entries(want)) {
      const s = forEachPacketSync(join(CORPUS_DIR, file), () => {});
      assert.deepEqual(s.linkTypes, lts, file);
      assert.equal(s.decodeFailures["unsupported-link-type"], undefined, file);
    }
  });
});
