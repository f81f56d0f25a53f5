import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { SYSCTLS, closestSysctlName, SysctlError, defaultSysctls, parseSysctlAssignment, parseSysctlFile, resolveSysctls } from "../../src/conntrack/sysctl.js";

describe("sysctl registry", () => {
  it("has every conntrack sysctl of Linux 6.18 with its default", () => {
    const d = defaultSysctls();
    const expected: Record<string, number> = {
      nf_conntrack_max: 262144,
      nf_conntrack_buckets: 262144,
      nf_conntrack_checksum: 1,
      nf_conntrack_log_invalid: 0,
      nf_conntrack_expect_max: 4096,
      nf_conntrack_acct: 0,
      nf_conntrack_events: 2,
      nf_conntrack_timestamp: 0,
      nf_conntrack_generic_timeout: 600,
      nf_conntrack_tcp_timeout_syn_sent: 120,
      nf_conntrack_tcp_timeout_syn_recv: 60,
      nf_conntrack_tcp_timeout_established: 432000,
      nf_conntrack_tcp_timeout_fin_wait: 120,
      nf_conntrack_tcp_timeout_close_wait: 60,
      nf_conntrack_tcp_timeout_last_ack: 30,
      nf_conntrack_tcp_timeout_time_wait: 120,
      nf_conntrack_tcp_timeout_close: 10,
      nf_conntrack_tcp_timeout_max_retrans: 300,
      nf_conntrack_tcp_timeout_unacknowledged: 300,
      nf_conntrack_tcp_loose: 1,
      nf_conntrack_tcp_be_liberal: 0,
      nf_conntrack_tcp_ignore_invalid_rst: 0,
      nf_conntrack_tcp_max_retrans: 3,
      nf_conntrack_udp_timeout: 30,
      nf_conntrack_udp_timeout_stream: 120,
      nf_conntrack_icmp_timeout: 30,
      nf_conntrack_icmpv6_timeout: 30,
      nf_conntrack_gre_timeout: 30,
      nf_conntrack_gre_timeout_stream: 180,
      nf_conntrack_sctp_timeout_closed: 10,
      nf_conntrack_sctp_timeout_cookie_wait: 3,
      nf_conntrack_sctp_timeout_cookie_echoed: 3,
      nf_conntrack_sctp_timeout_established: 210,
      nf_conntrack_sctp_timeout_shutdown_sent: 3,
      nf_conntrack_sctp_timeout_shutdown_recd: 3,
      nf_conntrack_sctp_timeout_shutdown_ack_sent: 3,
      nf_conntrack_sctp_timeout_heartbeat_sent: 30,
      nf_conntrack_frag6_timeout: 60,
      nf_conntrack_frag6_low_thresh: 3145728,
      nf_conntrack_frag6_high_thresh: 4194304,
    };
    assert.deepEqual({ ...d }, expected);
    for (const s of SYSCTLS) {
      assert.ok(s.description.length > 10, s.name);
      assert.ok(!s.description.endsWith("."), `${s.name}: no trailing period`);
      assert.ok(s.min <= s.default && s.default <= s.max, s.name);
    }
  });

  it("resolves timeouts to milliseconds, keeps other units, and freezes the result", () => {
    const v = resolveSysctls();
    assert.equal(v.nf_conntrack_tcp_timeout_established, 432000 * 1000);
    assert.equal(v.nf_conntrack_udp_timeout, 30000);
    assert.equal(v.nf_conntrack_frag6_timeout, 60000);
    assert.equal(v.nf_conntrack_max, 262144);
    assert.equal(v.nf_conntrack_frag6_high_thresh, 4194304);
    assert.ok(Object.isFrozen(v));
    assert.equal("nf_conntrack_count" in v, false);
  });

  it("rounds nf_conntrack_buckets up to a page of hash heads like nf_ct_alloc_hashtable", () => {
    assert.equal(resolveSysctls({ nf_conntrack_buckets: 100 }).nf_conntrack_buckets, 512);
    assert.equal(resolveSysctls({ nf_conntrack_buckets: 512 }).nf_conntrack_buckets, 512);
    assert.equal(resolveSysctls({ nf_conntrack_buckets: 513 }).nf_conntrack_buckets, 1024);
  });

  it("accepts every name form", () => {
    for (const key of [
      "nf_conntrack_max",
      "net.netfilter.nf_conntrack_max",
      "net/netfilter/nf_conntrack_max",
      "/proc/sys/net/netfilter/nf_conntrack_max",
      "net.nf_conntrack_max",
    ]) {
      const a = parseSysctlAssignment(`${key}=1000`);
      assert.equal(a.name, "nf_conntrack_max", key);
      assert.equal(a.value, 1000);
      assert.equal(a.key, key);
    }
    assert.equal(parseSysctlAssignment("  nf_conntrack_acct =  1 ").value, 1);
    assert.equal(resolveSysctls({ "net.netfilter.nf_conntrack_udp_timeout": "45" }).nf_conntrack_udp_timeout, 45000);
  });

  it("reads integers as proc_dointvec does: decimal, 0x hex, leading-zero octal", () => {
    assert.equal(parseSysctlAssignment("nf_conntrack_max=0x400").value, 1024);
    assert.equal(parseSysctlAssignment("nf_conntrack_max=010").value, 8);
    assert.equal(parseSysctlAssignment("nf_conntrack_max=1024\n").value, 1024);
  });

  it("rejects unknown names with the list of valid names (or the near miss)", () => {
    assert.throws(
      () => parseSysctlAssignment("nf_conntrack_tcp_tmeout_xyzzy_blah=5"),
      (e: unknown) =>
        e instanceof SysctlError &&
        e.reason === "unknown-name" &&
        e.message.startsWith('Unknown sysctl "nf_conntrack_tcp_tmeout_xyzzy_blah": valid names are nf_conntrack_acct, nf_conntrack_buckets,') &&
        e.message.includes("nf_conntrack_udp_timeout_stream") &&
        !e.message.endsWith("."),
    );
    assert.throws(() => parseSysctlAssignment("net.ipv4.ip_forward=1"), SysctlError);
    assert.throws(() => resolveSysctls({ nf_conntrack_foo: 1 }), /Unknown sysctl "nf_conntrack_foo"/);
  });

  it("rejects bad values and values out of range with the range", () => {
    assert.throws(
      () => parseSysctlAssignment("nf_conntrack_acct=2"),
      (e: unknown) =>
        e instanceof SysctlError &&
        e.reason === "out-of-range" &&
        e.message === 'Value "2" for sysctl "nf_conntrack_acct" is out of range: valid range is 0 to 1',
    );
    assert.throws(
      () => parseSysctlAssignment("nf_conntrack_max=lots"),
      (e: unknown) =>
        e instanceof SysctlError &&
        e.reason === "bad-value" &&
        e.message === 'Invalid value "lots" for sysctl "nf_conntrack_max": expected an integer from 0 to 2147483647',
    );
    assert.throws(() => parseSysctlAssignment("nf_conntrack_udp_timeout=-1"), /out of range: valid range is 0 to 8589934/);
    assert.throws(() => parseSysctlAssignment("nf_conntrack_events=3"), /valid range is 0 to 2/);
    assert.throws(() => parseSysctlAssignment("nf_conntrack_max"), /expected NAME=VALUE/);
    assert.throws(
      () => parseSysctlAssignment("nf_conntrack_count=5"),
      (e: unknown) => e instanceof SysctlError && e.reason === "read-only",
    );
    assert.throws(
      () => resolveSysctls({ nf_conntrack_frag6_low_thresh: 5_000_000 }),
      /nf_conntrack_frag6_low_thresh" is out of range: valid range is 0 to nf_conntrack_frag6_high_thresh \(4194304\)/,
    );
  });

  it("parses a sysctl.conf file: comments, blanks, spaces around =, ignored keys, - prefix", () => {
    const text = [
      "# conntrack tuning",
      "; another comment",
      "",
      "net.ipv4.ip_forward = 1",
      "net.netfilter.nf_conntrack_max = 65536",
      "   net/netfilter/nf_conntrack_tcp_timeout_established=7200",
      "net.netfilter.nf_log_all_netns = 0",
      "-net.netfilter.nf_conntrack_bogus = 1",
      "net.nf_conntrack_max=131072",
    ].join("\n");
    const f = parseSysctlFile(text, "99-ct.conf");
    assert.deepEqual(f.values, { nf_conntrack_max: 131072, nf_conntrack_tcp_timeout_established: 7200 });
    assert.deepEqual(
      f.assignments.map((a) => [a.name, a.value, a.line]),
      [
        ["nf_conntrack_max", 65536, 5],
        ["nf_conntrack_tcp_timeout_established", 7200, 6],
        ["nf_conntrack_max", 131072, 9],
      ],
    );
    assert.deepEqual(
      f.ignored.map((i) => [i.key, i.line]),
      [
        ["net.ipv4.ip_forward", 4],
        ["net.netfilter.nf_log_all_netns", 7],
        ["net.netfilter.nf_conntrack_bogus", 8],
      ],
    );
    assert.match(f.ignored[2]?.reason ?? "", /not a sysctl ctlab models/);
    assert.deepEqual(
      f.ignored.map((i) => i.kind),
      ["foreign", "foreign", "unknown"],
    );
  });

  it("reads `sysctl -a | grep conntrack` output: the read-only count and other kernels' sysctls are ignored, not fatal", () => {
    const text = [
      "net.netfilter.nf_conntrack_acct = 0",
      "net.netfilter.nf_conntrack_buckets = 65536",
      "net.netfilter.nf_conntrack_count = 160",
      "net.netfilter.nf_conntrack_dccp_loose = 1",
      "net.netfilter.nf_conntrack_dccp_timeout_open = 43200",
      "net.netfilter.nf_conntrack_max = 262144",
      "net.netfilter.nf_conntrack_tcp_timeout_established = 432000",
      "net.nf_conntrack_max = 262144",
    ].join("\n");
    const f = parseSysctlFile(text, "sysctl-a.txt");
    assert.deepEqual(f.values, { nf_conntrack_acct: 0, nf_conntrack_buckets: 65536, nf_conntrack_max: 262144, nf_conntrack_tcp_timeout_established: 432000 });
    assert.deepEqual(
      f.ignored.map((i) => [i.key, i.kind]),
      [
        ["net.netfilter.nf_conntrack_count", "read-only"],
        ["net.netfilter.nf_conntrack_dccp_loose", "unknown"],
        ["net.netfilter.nf_conntrack_dccp_timeout_open", "unknown"],
      ],
    );
  });

  it("suggests the nearest name for a mistyped sysctl", () => {
    assert.equal(closestSysctlName("nf_conntrack_tcp_timeout_establised"), "nf_conntrack_tcp_timeout_established");
    assert.equal(closestSysctlName("net.netfilter.nf_conntrak_max"), "nf_conntrack_max");
    assert.equal(closestSysctlName("nf_conntrack_dccp_timeout_open"), undefined);
    // A sysctl of a protocol ctlab does not model is no typo of a modelled one, however close.
    assert.equal(closestSysctlName("nf_conntrack_dccp_loose"), undefined);
    assert.throws(() => parseSysctlAssignment("nf_conntrack_mx=5"), /Unknown sysctl "nf_conntrack_mx": did you mean "nf_conntrack_max"\?/);
    assert.throws(() => parseSysctlAssignment("nf_conntrack_count=5"), /read-only/);
  });

  it("reports file and line of an error in a file", () => {
    assert.throws(
      () => parseSysctlFile("# x\nnet.netfilter.nf_conntrack_max = 1\nnet.netfilter.nf_conntrack_tcp_timeout_establised = 5\n", "ct.conf"),
      (e: unknown) =>
        e instanceof SysctlError &&
        e.file === "ct.conf" &&
        e.line === 3 &&
        e.message === 'ct.conf:3: Unknown sysctl "net.netfilter.nf_conntrack_tcp_timeout_establised": did you mean "nf_conntrack_tcp_timeout_established"?',
    );
    assert.throws(
      () => parseSysctlFile("net.netfilter.nf_conntrack_acct = yes", "a.conf"),
      /a\.conf:1: Invalid value "yes" for sysctl "net\.netfilter\.nf_conntrack_acct"/,
    );
    assert.throws(() => parseSysctlFile("just words", "b.conf"), /b\.conf:1: Invalid line "just words": expected NAME=VALUE/);
  });
});
