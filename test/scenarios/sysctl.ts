/**
 * Scenarios run with non-default conntrack sysctls (set in the router
 * namespace and given to ctlab alike). Each distinct sysctl set is its own
 * kernel run.
 */
import { buildIcmp, buildIcmpError, buildSctp, buildTcp, buildUdp, sctpInitChunk } from "../../src/packet/build.js";
import { TcpConv } from "./dsl.js";
import type { Scenario, ScenarioContext } from "./types.js";

function conv(ctx: ScenarioContext, cport: number, o: Partial<ConstructorParameters<typeof TcpConv>[1]> = {}): TcpConv {
  return new TcpConv(ctx, { client: ctx.v4(1), server: ctx.v4(2), cport, sport: 443, ...o });
}

/** Segments that window tracking and RST validation care about. */
function windowProbes(ctx: ScenarioContext, base: number): void {
  conv(ctx, base).data("c", 100).data("s", 100).ack("c");
  const far = conv(ctx, base + 1, { winS: 1000 });
  far
    .handshake()
    .data("c", 100, { seq: (far.next.c + 1_000_000) >>> 0, noAdvance: true })
    .data("c", 10)
    .ack("s");
  const rst = conv(ctx, base + 2);
  rst
    .handshake()
    .data("s", 1000)
    .ack("c")
    .rst("s", { seq: (rst.next.s - 5000) >>> 0 });
  const inx = conv(ctx, base + 3);
  inx
    .handshake()
    .data("c", 100)
    .ack("s")
    .rst("s", { seq: (inx.next.s + 100) >>> 0 });
  const ack = conv(ctx, base + 4);
  ack
    .handshake()
    .data("c", 100)
    .ack("s", { ack: (ack.next.c + 50_000) >>> 0 });
}

export const sysctlScenarios: Scenario[] = [
  {
    name: "sysctl-tcp-loose-off",
    description: "nf_conntrack_tcp_loose=0: mid-stream data, a normal handshake, out-of-window data and RSTs",
    expected: "Mid-stream packets are INVALID and create nothing; handshakes work as usual",
    tags: ["tcp", "sysctl"],
    kernel: { sysctls: { nf_conntrack_tcp_loose: 0 } },
    build(ctx) {
      windowProbes(ctx, 42000);
      conv(ctx, 42010).handshake().data("c", 10).ack("s");
    },
  },
  {
    name: "sysctl-tcp-be-liberal",
    description: "nf_conntrack_tcp_be_liberal=1: out-of-window data, an ACK for unsent data, and RSTs below the window",
    expected: "Window failures are accepted; the RST check still marks an out-of-window RST INVALID",
    tags: ["tcp", "sysctl"],
    kernel: { sysctls: { nf_conntrack_tcp_be_liberal: 1 } },
    build(ctx) {
      windowProbes(ctx, 42100);
    },
  },
  {
    name: "sysctl-tcp-ignore-invalid-rst",
    description: "nf_conntrack_tcp_ignore_invalid_rst=1: RSTs below the window and inexact RSTs",
    expected: "The below-window RST is no longer INVALID",
    tags: ["tcp", "sysctl"],
    kernel: { sysctls: { nf_conntrack_tcp_ignore_invalid_rst: 1 } },
    build(ctx) {
      windowProbes(ctx, 42200);
    },
  },
  {
    name: "sysctl-tcp-retrans",
    description:
      "nf_conntrack_tcp_max_retrans=1 and nf_conntrack_tcp_timeout_max_retrans=100: a repeated ACK; unacknowledged data with unacknowledged timeout 200",
    expected: "One retransmission already clamps the timeout to 100 s; unacknowledged data to 200 s",
    tags: ["tcp", "sysctl"],
    kernel: { sysctls: { nf_conntrack_tcp_max_retrans: 1, nf_conntrack_tcp_timeout_max_retrans: 100, nf_conntrack_tcp_timeout_unacknowledged: 200 } },
    build(ctx) {
      const a = conv(ctx, 42301);
      a.handshake().data("c", 100).ack("s").ack("s", { noAdvance: true }).ack("s", { noAdvance: true });
      conv(ctx, 42302).handshake().data("c", 100);
      conv(ctx, 42303).handshake().data("c", 100).ack("s", { win: 0 });
    },
  },
  {
    name: "sysctl-timeouts",
    description: "Custom timeouts: UDP 45/150, ICMP 15, generic 100, TCP SYN_SENT 77, ESTABLISHED 1000, TIME_WAIT 33",
    expected: "Entries carry the configured timeouts",
    tags: ["sysctl"],
    kernel: {
      sysctls: {
        nf_conntrack_udp_timeout: 45,
        nf_conntrack_udp_timeout_stream: 150,
        nf_conntrack_icmp_timeout: 15,
        nf_conntrack_generic_timeout: 100,
        nf_conntrack_tcp_timeout_syn_sent: 77,
        nf_conntrack_tcp_timeout_established: 1000,
        nf_conntrack_tcp_timeout_time_wait: 33,
      },
    },
    build(ctx) {
      ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 42401, dport: 53, payload: 20 }));
      ctx.emit(buildIcmp({ src: ctx.v4(1), dst: ctx.v4(2), type: 8, id: 9, seq: 1 }));
      ctx.emit(buildUdp({ src: ctx.v4(1), dst: ctx.v4(2), sport: 42402, dport: 53, payload: 20 }).slice());
      conv(ctx, 42403).syn("c");
      conv(ctx, 42404).handshake().data("c", 10).ack("s");
      conv(ctx, 42405).handshake().closeFrom("c");
      ctx.emit(buildTcp({ src: ctx.v4(3), dst: ctx.v4(4), sport: 1, dport: 2, flags: "A", seq: 1, ack: 1 }));
    },
  },
  {
    name: "sysctl-checksum-on",
    description:
      "nf_conntrack_checksum=1: TCP, UDP, ICMP, ICMPv6 and SCTP with correct and with wrong checksums; UDP with checksum 0; an ICMP error with a wrong checksum quoting a real flow",
    expected: "Wrong transport checksums are INVALID (ICMP errors count as error); a zero UDP checksum is accepted",
    tags: ["sysctl", "checksum"],
    kernel: { sysctls: { nf_conntrack_checksum: 1 } },
    build(ctx) {
      const a = ctx.v4(1);
      const b = ctx.v4(2);
      ctx.emit(buildTcp({ src: a, dst: b, sport: 42501, dport: 80, flags: "S", seq: 1 }));
      ctx.emit(buildTcp({ src: a, dst: b, sport: 42502, dport: 80, flags: "S", seq: 1, checksum: "bad" }));
      const u = buildUdp({ src: a, dst: b, sport: 42503, dport: 53, payload: 20 });
      ctx.emit(u);
      ctx.emit(buildUdp({ src: a, dst: b, sport: 42504, dport: 53, payload: 20, checksum: "bad" }));
      ctx.emit(buildUdp({ src: a, dst: b, sport: 42505, dport: 53, payload: 20, checksum: "none" }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 8, id: 1, seq: 1 }));
      ctx.emit(buildIcmp({ src: a, dst: b, type: 8, id: 2, seq: 1, checksum: "bad" }));
      ctx.emit(buildIcmp({ src: ctx.v6(1), dst: ctx.v6(2), type: 128, id: 3, seq: 1 }));
      ctx.emit(buildIcmp({ src: ctx.v6(1), dst: ctx.v6(2), type: 128, id: 4, seq: 1, checksum: "bad" }));
      ctx.emit(buildUdp({ src: ctx.v6(1), dst: ctx.v6(2), sport: 42506, dport: 53, payload: 20, checksum: "bad" }));
      ctx.emit(buildSctp({ src: a, dst: b, sport: 42507, dport: 9, vtag: 0, chunks: [sctpInitChunk(0x42)] }));
      ctx.emit(buildSctp({ src: a, dst: b, sport: 42508, dport: 9, vtag: 0, chunks: [sctpInitChunk(0x43)], checksum: "bad" }));
      ctx.emit(buildIcmpError(u, { type: 3, code: 3 }));
      ctx.emit(buildIcmpError(u, { type: 3, code: 3, checksum: "bad" }));
    },
  },
];
