/**
 * The kernel's own conntrack packetdrill scripts
 * (tools/testing/selftests/net/netfilter/packetdrill/*.pkt), replayed packet
 * by packet with packetdrill's sequence-number mapping: outbound seq and all
 * inbound acks are relative to the local ISN; inbound non-SYN seq and
 * outbound non-SYN acks are relative to the remote ISN, which is the seq of
 * the first inbound SYN or SYN/ACK. The INVALID counts are those the scripts
 * check with iptables counters on INPUT and OUTPUT.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TcpTracker } from "../../src/conntrack/tcp.js";
import { IPS } from "../../src/conntrack/constants.js";
import { FakeConntrack, flagByte, tcp, type Host, type TcpSpec } from "./fake-ctx.js";

const LOCAL: Host = 0;
const REMOTE: Host = 1;

type Opts = Omit<TcpSpec, "flags" | "seq" | "ack" | "len">;

/** Options written "<mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>". */
const CLIENT_SYN_OPTS: Opts = { mss: true, sackPerm: true, ts: true, wscale: 8 };

class Drill {
  readonly ct = new FakeConntrack((n) => new TcpTracker(n), { sysctl: { nf_conntrack_log_invalid: 6 } });
  /** Live ISN of the local (kernel-under-test) socket. Chosen so that sequence numbers wrap. */
  readonly L = 4_000_000_000;
  remoteIsn: number | undefined;
  invalidIn = 0;
  invalidOut = 0;

  /** `> flags seq:end(len) ack a win w <opts>` — sent by the local stack, seen at OUTPUT. */
  out(flags: string, seq: number, len: number, ack: number | undefined, win: number, opts: Opts = {}): void {
    const syn = (flagByte(flags) & 0x02) !== 0;
    const liveAck = ack === undefined ? 0 : syn ? ack : ack + (this.remoteIsn ?? 0);
    const r = this.ct.send(LOCAL, tcp({ flags, seq: this.L + seq, len, ack: liveAck, win, ...opts }));
    if (r.verdict <= 0) this.invalidOut++;
  }

  /** `< flags seq:end(len) ack a win w <opts>` — injected from the remote side, seen at PRE_ROUTING. */
  in(flags: string, seq: number, len: number, ack: number | undefined, win: number, opts: Opts = {}): void {
    const syn = (flagByte(flags) & 0x02) !== 0;
    if (syn && this.remoteIsn === undefined) this.remoteIsn = seq;
    const liveSeq = syn ? seq : seq + (this.remoteIsn ?? 0);
    const liveAck = ack === undefined ? 0 : ack + this.L;
    const r = this.ct.send(REMOTE, tcp({ flags, seq: liveSeq, len, ack: liveAck, win, ...opts }));
    if (r.verdict <= 0) this.invalidIn++;
  }

  /** What `conntrack -L` would show: state plus [UNREPLIED]/[ASSURED]. */
  listing(): string {
    if (!this.ct.exists) return "";
    const st = this.ct.status;
    return `${this.ct.state()}${st & IPS.SEEN_REPLY ? "" : " [UNREPLIED]"}${st & IPS.ASSURED ? " [ASSURED]" : ""}`;
  }
}

/** The common opening of conntrack_rst_invalid.pkt and conntrack_inexact_rst.pkt. */
function connectAndReceive3000(d: Drill): void {
  d.out("S", 0, 0, undefined, 65535, CLIENT_SYN_OPTS);
  d.in("S.", 1, 0, 1, 65535, { mss: true });
  d.out(".", 1, 0, 1, 65535);
  d.in(".", 1, 1000, 1, 65535);
  d.in(".", 1001, 1000, 1, 65535);
  d.in(".", 2001, 1000, 1, 65535);
  d.out(".", 1, 0, 1001, 65535);
  d.out(".", 1, 0, 2001, 65535);
  d.out(".", 1, 0, 3001, 65535);
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
}

test("conntrack_rst_invalid.pkt: out-of-window RSTs INVALID, inexact one keeps ESTABLISHED, exact one closes; 4 INVALID", () => {
  const d = new Drill();
  connectAndReceive3000(d);
  d.in("R", 0, 0, undefined, 0); // out of window
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  d.in("R", 1000000, 0, undefined, 0); // out of window
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  d.in("R", 42, 0, undefined, 0); // "in-window but not exact match"
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  d.out("P.", 1, 1000, 3001, 65535);
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  d.in(".", 3001, 0, 1001, 65535);
  d.in("R.", 3000, 0, 1001, 0);
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  d.in("R.", 3001, 0, 1001, 0); // exact next sequence
  assert.equal(d.invalidIn, 4);
  assert.equal(d.invalidOut, 0);
  assert.equal(d.listing(), "CLOSE [ASSURED]");
  assert.deepEqual(
    d.ct.ctx.logs.filter((l) => l === "invalid rst"),
    ["invalid rst", "invalid rst", "invalid rst"],
  );
});

test("conntrack_inexact_rst.pkt: inexact RST in CLOSE_WAIT closes, a later spurious RST is not INVALID", () => {
  const d = new Drill();
  connectAndReceive3000(d);
  d.out("P.", 1, 1000, 3001, 65535);
  d.in("F.", 3001, 0, 1001, 65535);
  d.out(".", 1001, 0, 3002, 65535);
  assert.equal(d.listing(), "CLOSE_WAIT [ASSURED]");
  d.out("R.", 1001, 0, 3002, 65535);
  assert.equal(d.listing(), "CLOSE [ASSURED]");
  d.in("R", 2001, 0, undefined, 0);
  assert.equal(d.invalidIn, 0);
  assert.equal(d.invalidOut, 0);
  assert.equal(d.listing(), "CLOSE [ASSURED]");
});

test("conntrack_ack_loss_stall.pkt: an already-ACKed retransmission is IGNOREd, not INVALID", () => {
  const d = new Drill();
  d.in("S", 0, 0, undefined, 32792, { mss: true });
  d.out("S.", 0, 0, 1, 65535, { mss: true });
  d.in(".", 1, 0, 1, 65535);
  let seq = 1;
  while (seq < 67161) {
    d.in("P.", seq, 1460, 1, 257);
    seq += 1460;
    d.out(".", 1, 0, seq, 65535);
  }
  assert.equal(seq, 67161);
  d.in("P.", 1, 1460, 1, 257);
  assert.equal(d.ct.ctx.logs.at(-1), `SEQ is under lower bound ${1625 + 0} (already ACKed data retransmitted)`);
  d.out(".", 1, 0, 67161, 65535);
  assert.equal(d.invalidIn, 0);
  assert.equal(d.invalidOut, 0);
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
});

test("conntrack_syn_challenge_ack.pkt: challenge ACK and RST pass, the SYN reopens, handshake completes; nothing INVALID", () => {
  const d = new Drill();
  d.out("S", 0, 0, undefined, 65535, CLIENT_SYN_OPTS);
  // Challenge ACK from an old incarnation (options on a non-SYN, as in the script).
  d.in(".", 145824453, 0, 643160523, 240, { mss: true, ts: true, wscale: 0 });
  assert.equal(d.ct.state(), "SYN_SENT", "ignored");
  d.out("R", 643160523, 0, undefined, 0);
  // The RST answering the challenge ACK skips the window check and moves the
  // entry to CLOSE (SEEN_REPLY was set by the ignored ACK). The script's
  // "UNREPLIED SYN_SENT" listing comes 20 ms later, after the SYN that
  // tcp_rcv_synsent_state_process re-arms TCP_TIMEOUT_MIN after the bad ACK:
  // that SYN reopens the entry (REPEAT) as a fresh one.
  assert.equal(d.listing(), "CLOSE");
  d.out("S", 0, 0, undefined, 65535, CLIENT_SYN_OPTS);
  assert.equal(d.listing(), "SYN_SENT [UNREPLIED]");
  assert.equal(d.ct.events.at(-2), "[DESTROY] 10 CLOSE");
  d.in("S.", 0, 0, 1, 250, { mss: true, ts: true, wscale: 0 });
  d.out(".", 1, 0, 1, 256, { ts: true });
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  assert.equal(d.invalidIn, 0);
  assert.equal(d.invalidOut, 0);
});

test("conntrack_synack_old.pkt: a SYN/ACK for an old SYN is INVALID, the correct one after the retransmit is accepted; 1 INVALID", () => {
  const d = new Drill();
  d.out("S", 0, 0, undefined, 65535, CLIENT_SYN_OPTS);
  d.in("S.", 145824453, 0, 643160523, 240, { mss: true, ts: true, wscale: 0 });
  assert.equal(d.ct.ctx.logs.at(-1), `ACK is over upper bound ${(d.L + 2) >>> 0} (ACKed data not seen yet)`);
  d.out("S", 0, 0, undefined, 65535, { ...CLIENT_SYN_OPTS });
  assert.equal(d.listing(), "SYN_SENT [UNREPLIED]");
  d.in("S.", 145758918, 0, 1, 250, { mss: true, ts: true, wscale: 0 });
  assert.equal(d.ct.state(), "SYN_RECV");
  // The handshake-completing ACK the kernel sends (not scripted), then the data.
  d.out(".", 1, 0, 4294901762, 256, { ts: true });
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  d.out("P.", 1, 1, 4294901762, 256, { ts: true });
  assert.equal(d.listing(), "ESTABLISHED [ASSURED]");
  assert.equal(d.invalidOut, 0);
  assert.equal(d.invalidIn, 1);
});

test("conntrack_synack_reuse.pkt: SYN while ESTABLISHED, challenge ACK passes, RST clears, SYN retransmit gives SYN_RECV", () => {
  const d = new Drill();
  d.in("S", 0, 0, undefined, 32792, { mss: true, wscale: 7, ts: true });
  d.out("S.", 0, 0, 1, 65535, { mss: true, ts: true, wscale: 8 });
  d.in(".", 1, 0, 1, 257, { ts: true });
  d.in("P.", 1, 100, 1, 257, { ts: true });
  d.out(".", 1, 0, 101, 256, { ts: true });
  d.in("S", 2000, 0, undefined, 32792, { mss: true, wscale: 7, ts: true });
  assert.equal(d.ct.state(), "ESTABLISHED");
  d.out(".", 1, 0, 101, 256, { ts: true }); // challenge ACK
  d.in("R.", 101, 0, 1, 257);
  assert.equal(d.ct.state(), "CLOSE");
  d.in("S", 2000, 0, undefined, 32792, { mss: true, wscale: 0, ts: true });
  assert.equal(d.listing(), "SYN_SENT [UNREPLIED]", "reopened");
  // The listener answers the SYN with a fresh SYN/ACK (not scripted).
  const eventsBefore = d.ct.events.length;
  d.ct.send(LOCAL, tcp({ flags: "S.", seq: 123_456_789, ack: 2001, win: 65535, mss: true, ts: true, wscale: 8 }));
  assert.equal(d.ct.state(), "SYN_RECV");
  assert.deepEqual(d.ct.events.slice(eventsBefore), ["[UPDATE] 60 SYN_RECV"]);
  assert.equal(d.invalidIn, 0);
  assert.equal(d.ct.invalid, 0, "no INVALID SYN/ACK either");
});
