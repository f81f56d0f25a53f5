import { test } from "node:test";
import assert from "node:assert/strict";
import { Census, formatCensusText } from "../../src/conntrack/census.js";
import type { CensusEntry } from "../../src/conntrack/census.js";
import { ipToWords } from "../../src/packet/addr.js";

function entry(
  src: string,
  dst: string,
  proto: number,
  dport: number,
  state = "",
  flags: { unreplied?: boolean; assured?: boolean } = {},
  timeout = 100,
): CensusEntry {
  const s = new Uint32Array(4);
  const d = new Uint32Array(4);
  const family = ipToWords(src, s);
  ipToWords(dst, d);
  return {
    family,
    proto,
    state,
    unreplied: flags.unreplied === true,
    assured: flags.assured === true,
    timeoutSeconds: timeout,
    src: s,
    dst: d,
    sport: 40000,
    dport,
  };
}

test("census: top lists largest first with shares, ties by key", () => {
  const c = new Census();
  for (let i = 0; i < 3; i++) c.add(entry("10.0.0.9", "192.0.2.1", 6, 443, "ESTABLISHED", { assured: true }));
  for (let i = 0; i < 3; i++) c.add(entry("10.0.0.2", "192.0.2.1", 6, 80, "SYN_SENT", { unreplied: true }));
  c.add(entry("10.0.1.1", "192.0.2.53", 17, 53, "", { unreplied: true }));
  c.add(entry("2001:db8::1", "2001:db8:1::5", 17, 53));
  const r = c.result(2);
  assert.equal(r.entries, 8);
  assert.equal(r.top, 2);
  // 3 and 3: the smaller address first.
  assert.deepEqual(r.sources.top, [
    { key: "10.0.0.2", entries: 3, share: 0.375 },
    { key: "10.0.0.9", entries: 3, share: 0.375 },
  ]);
  assert.equal(r.sources.distinct, 4);
  assert.deepEqual(r.destinations.top[0], { key: "192.0.2.1", entries: 6, share: 0.75 });
  assert.deepEqual(r.source_networks.top, [
    { key: "10.0.0.0/24", entries: 6, share: 0.75 },
    { key: "10.0.1.0/24", entries: 1, share: 0.125 },
  ]);
  assert.deepEqual(
    c.result(10).destination_networks.top.map((i) => i.key),
    ["192.0.2.0/24", "2001:db8:1::/64"],
  );
  assert.deepEqual(c.result(10).destination_ports.top, [
    { key: "tcp/80", entries: 3, share: 0.375 },
    { key: "tcp/443", entries: 3, share: 0.375 },
    { key: "udp/53", entries: 2, share: 0.25 },
  ]);
  // No empty keys: a protocol without states is named alone.
  assert.deepEqual(
    c.result(10).states.top.map((i) => i.key),
    ["tcp ESTABLISHED", "tcp SYN_SENT", "udp"],
  );
  assert.deepEqual(r.unreplied, { entries: 4, share: 0.5 });
  assert.deepEqual(r.assured, { entries: 3, share: 0.375 });
  assert.deepEqual(c.result(10).families.top, [
    { key: "ipv4", entries: 7, share: 0.875 },
    { key: "ipv6", entries: 1, share: 0.125 },
  ]);
  assert.deepEqual(
    c.result(10).protocols.top.map((i) => [i.key, i.entries]),
    [
      ["tcp", 6],
      ["udp", 2],
    ],
  );
});

test("census: IPv6 sources counted exactly, /64 networks grouped", () => {
  const c = new Census();
  for (let i = 0; i < 5; i++) c.add(entry(`2001:db8:0:1::${i + 1}`, "2001:db8::1", 6, 22, "ESTABLISHED"));
  c.add(entry("2001:db8:0:1::1", "2001:db8::1", 6, 22, "ESTABLISHED"));
  c.add(entry("2001:db8:0:2::1", "2001:db8::1", 6, 22, "ESTABLISHED"));
  const r = c.result(3);
  assert.deepEqual(r.sources.top[0], { key: "2001:db8:0:1::1", entries: 2, share: 0.285714 });
  assert.equal(r.sources.distinct, 6);
  assert.deepEqual(r.source_networks.top, [
    { key: "2001:db8:0:1::/64", entries: 6, share: 0.857143 },
    { key: "2001:db8:0:2::/64", entries: 1, share: 0.142857 },
  ]);
});

test("census: empty, top 0, and count() conditions", () => {
  const c = new Census();
  const r = c.result();
  assert.equal(r.entries, 0);
  assert.deepEqual(r.sources, { distinct: 0, top: [] });
  assert.deepEqual(r.unreplied, { entries: 0, share: 0 });
  c.add(entry("10.0.0.1", "10.0.0.2", 6, 80, "ESTABLISHED", { unreplied: true }, 300));
  c.add(entry("10.0.0.1", "10.0.0.2", 6, 80, "ESTABLISHED", {}, 431000));
  assert.equal(c.result(0).sources.top.length, 0);
  assert.equal(c.result(0).sources.distinct, 1);
  assert.equal(c.count({ proto: 6, state: "ESTABLISHED", timeoutAbove: 300 }), 1);
  assert.equal(c.count({ unreplied: true }), 1);
  assert.equal(c.count({ state: "CLOSE" }), 0);
  assert.ok(formatCensusText(c.result(), "Census").some((l) => l.includes("10.0.0.1")));
});

test("census: a reused entry object is copied, and a tracker-style reader is read through its ORIGINAL tuple", () => {
  const c = new Census();
  const e = entry("10.0.0.1", "10.0.0.2", 17, 53) as { -readonly [K in keyof CensusEntry]: CensusEntry[K] };
  c.add(e);
  e.dport = 123;
  c.add(e);
  assert.deepEqual(
    c.result().destination_ports.top.map((i) => i.key),
    ["udp/53", "udp/123"],
  );
  const t = { s0: 0x0a000001, s1: 0, s2: 0, s3: 0, d0: 0x0a000002, d1: 0, d2: 0, d3: 0, sport: 1, dport: 8080 };
  const seen: number[] = [];
  c.addReader({ family: 4, proto: 6, stateName: "SYN_SENT", status: 0, timeoutSeconds: 120, tuple: (dir) => (seen.push(dir), t) });
  assert.deepEqual(seen, [0]);
  const r = c.result();
  assert.equal(r.unreplied.entries, 1);
  assert.ok(r.destination_ports.top.some((i) => i.key === "tcp/8080"));
});

test("census: a million IPv4 entries stay within ~16 MB of columns and sort in seconds", () => {
  const c = new Census({ expected: 1 << 20 });
  const e = entry("10.0.0.0", "192.0.2.1", 6, 443, "ESTABLISHED") as { -readonly [K in keyof CensusEntry]: CensusEntry[K] };
  const s = e.src as Uint32Array;
  for (let i = 0; i < 1_000_000; i++) {
    s[0] = (0x0a000000 + (i % 250_000)) >>> 0;
    e.dport = i % 1000;
    c.add(e);
  }
  assert.ok(c.memoryBytes <= 16 * 1024 * 1024, String(c.memoryBytes));
  const t0 = performance.now();
  const r = c.result(5);
  assert.ok(performance.now() - t0 < 10_000);
  assert.equal(r.sources.distinct, 250_000);
  assert.deepEqual(r.sources.top[0], { key: "10.0.0.0", entries: 4, share: 0.000004 });
  assert.equal(r.destination_ports.distinct, 1000);
  assert.equal(r.source_networks.top[0]?.entries, 1024);
});

test("census: padded state texts count as their trimmed name", () => {
  const c = new Census();
  c.add(entry("10.0.0.1", "10.0.0.2", 6, 80, "ESTABLISHED "));
  c.add(entry("10.0.0.1", "10.0.0.2", 6, 80, "ESTABLISHED"));
  assert.deepEqual(c.result().states.top, [{ key: "tcp ESTABLISHED", entries: 2, share: 1 }]);
  assert.equal(c.count({ state: "ESTABLISHED" }), 2);
});
