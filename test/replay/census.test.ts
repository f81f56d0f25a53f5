import { test } from "node:test";
import assert from "node:assert/strict";
import { replay } from "../../src/replay/replay.js";
import { buildUdp } from "../../src/packet/build.js";
import { PcapWriter } from "../../src/packet/writer.js";

/** `burst` UDP flows from 10.0.0.0/24 at t=0 (they expire after 30 s), then `later` flows from 10.0.1.0/24 at t=100 s. */
function capture(burst: number, later: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter((c) => chunks.push(c));
  for (let i = 0; i < burst; i++)
    w.writePacket(1_795_600_000, i * 1000, buildUdp({ src: `10.0.0.${i % 250}`, dst: "192.0.2.53", sport: 1000 + i, dport: 53, payload: 10 }));
  for (let i = 0; i < later; i++)
    w.writePacket(1_795_600_100, i * 1000, buildUdp({ src: `10.0.1.${i % 250}`, dst: "192.0.2.123", sport: 2000 + i, dport: 123, payload: 10 }));
  w.close();
  return Buffer.concat(chunks);
}

test("the peak census sees the table at its peak, not after the burst expired", async () => {
  const run = await replay(capture(400, 20), { census: { top: 3 }, sysctls: { nf_conntrack_checksum: 0 } });
  const c = run.summary.census;
  assert.ok(c !== null);
  assert.equal(run.summary.peak_entries, 400);
  assert.equal(c.final.entries, 20);
  assert.deepEqual(c.final.destination_ports.top[0], { key: "udp/123", entries: 20, share: 1 });
  // The ramp to 400 is walked a bounded number of times; the last census is of a peak ≥ 4/5 of 400.
  assert.ok(c.peak.peak_entries >= 320 && c.peak.peak_entries <= 400, String(c.peak.peak_entries));
  assert.equal(c.peak.entries, c.peak.peak_entries);
  assert.deepEqual(c.peak.destination_ports.top, [{ key: "udp/53", entries: c.peak.entries, share: 1 }]);
  assert.equal(c.peak.source_networks.top[0]?.key, "10.0.0.0/24");
});

test("a table that ends at its peak has the final census for the peak", async () => {
  const run = await replay(capture(50, 0), { census: { top: 5 }, sysctls: { nf_conntrack_checksum: 0 } });
  const c = run.summary.census!;
  assert.equal(c.peak.peak_entries, 50);
  assert.equal(c.peak.entries, 50);
  assert.equal(c.final.entries, 50);
});

test("no census unless asked for; kernel memory counts the extension block only when an extension is on", async () => {
  const bytes = capture(10, 0);
  const plain = await replay(bytes, { sysctls: { nf_conntrack_checksum: 0, nf_conntrack_buckets: 1024 } });
  assert.equal(plain.summary.census, null);
  assert.deepEqual(plain.summary.memory.kernel, { object_size: 256, extension_size: 0, entries_bytes: 2560, buckets_bytes: 8192, total_bytes: 10752 });
  assert.equal(plain.summary.memory.kernel_full?.entries_bytes, 256 * plain.summary.max_entries);
  const acct = await replay(bytes, { sysctls: { nf_conntrack_checksum: 0, nf_conntrack_buckets: 1024, nf_conntrack_acct: 1 } });
  assert.equal(acct.summary.memory.kernel.extension_size, 128);
  assert.equal(acct.summary.memory.kernel.entries_bytes, 10 * 384);
  const events = await replay(bytes, { sysctls: { nf_conntrack_checksum: 0 }, onEvent: () => {} });
  assert.equal(events.summary.memory.kernel.extension_size, 128);
  const unlimited = await replay(bytes, { sysctls: { nf_conntrack_checksum: 0, nf_conntrack_max: 0 } }).catch(() => null);
  if (unlimited !== null) assert.equal(unlimited.summary.memory.kernel_full, null);
});

test("the 5-day hint counts only ESTABLISHED entries on the established timeout", async () => {
  const run = await replay(capture(5, 0), { sysctls: { nf_conntrack_checksum: 0 } });
  assert.equal(run.summary.entries.tcp_established_long, 0);
  assert.ok(!run.summary.entries.by_protocol.udp || run.summary.entries.by_protocol.udp.entries === 5);
});
