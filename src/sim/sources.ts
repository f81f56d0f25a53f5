/**
 * Traffic sources of the simulator. Each source owns its own event queue and
 * reports the time of its next action; the engine runs the earliest one.
 * Packets go out through {@link SimNet.tcp}/{@link SimNet.udp}, which run
 * them through the tracker at once and say whether they arrived, so a host
 * reacts to a drop as a real one would (a client retransmits a SYN the full
 * table dropped; a resolver asks again after its timeout).
 */
import type { FrameSink } from "./sink.js";
import { FrameWriter, NO_OPTIONS, SYN_OPTIONS, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from "./frames.js";
import { EventHeap } from "./heap.js";
import { Rng } from "./random.js";
import type { Loss, Scenario, TrafficSource } from "./scenario.js";
import { CaptureTraffic, loadCapture } from "./capture.js";
import type { CaptureFrames } from "./capture.js";

/** Legitimate traffic's fate, counted per simulated second by the sampler. */
export class LegitCounters {
  attempted = 0;
  completed = 0;
  failed = 0;
  /** Clients that crashed (not counted as attempted: their fate is not the server's doing). */
  vanished = 0;
}

/** The LAN behind a tracking host that is a gateway (`host.gateway`). */
export interface SimLan {
  /** First address of the prefix (host order) and how many addresses it holds. */
  readonly net: number;
  readonly size: number;
  /**
   * The packet as it left the tracking host's path (the tracking sink's view,
   * NAT applied): where a LAN client's packet went out from, and where a
   * packet from outside was delivered.
   */
  readonly view: { readonly src: Uint32Array; readonly dst: Uint32Array; readonly sport: number; readonly dport: number };
}

/** The network between the simulated hosts and the tracking host. */
export class SimNet {
  readonly w = new FrameWriter();
  readonly legit = new LegitCounters();
  /** Packets sent (before loss) and lost on the path. */
  sent = 0;
  lost = 0;
  readonly #open = new Set<string>();
  readonly #allOpen: boolean;

  /**
   * @param server where clients and dns sources connect: the tracking host itself, or beyond it when it is a gateway
   * @param host the tracking host's address, which floods and scans aim at
   * @param lan the LAN when the tracking host is a gateway (clients come from it), else null
   */
  constructor(
    readonly sink: FrameSink,
    readonly server: number,
    readonly rng: Rng,
    services: readonly string[] | undefined,
    readonly host: number = server,
    readonly lan: SimLan | null = null,
  ) {
    this.#allOpen = services === undefined;
    for (const s of services ?? []) this.#open.add(s);
  }

  /** After a packet got through: whether a packet for LAN host `addr` was delivered to it (not left at the gateway, un-NATed). */
  deliveredTo(addr: number): boolean {
    const lan = this.lan;
    return lan === null || lan.view.dst[0] === addr;
  }

  /** Whether the server listens on `proto/port`. */
  isOpen(proto: "tcp" | "udp", port: number): boolean {
    return this.#allOpen || this.#open.has(`${proto}/${port}`);
  }

  #lostBy(loss: Loss | null, toServer: boolean, flags: number): boolean {
    if (loss === null) return false;
    if (loss.direction === "to-server" && !toServer) return false;
    if (loss.direction === "to-client" && toServer) return false;
    let p = loss.all;
    if (flags & TCP_FIN) p = 1 - (1 - p) * (1 - loss.fin);
    if (flags & TCP_RST) p = 1 - (1 - p) * (1 - loss.rst);
    return p > 0 && this.rng.next() < p;
  }

  /** Sends a TCP segment; true when it reached the other end. */
  tcp(
    us: number,
    src: number,
    dst: number,
    sport: number,
    dport: number,
    seq: number,
    ack: number,
    flags: number,
    win: number,
    opts: Uint8Array,
    payload: number,
    loss: Loss | null,
    toServer: boolean,
  ): boolean {
    this.sent++;
    const before = loss !== null && loss.where === "before";
    if (before && this.#lostBy(loss, toServer, flags)) {
      this.lost++;
      return false;
    }
    const len = this.w.tcp(src, dst, sport, dport, seq, ack, flags, win, opts, payload);
    if (!this.sink.frame(us, this.w.buf, len)) return false;
    if (!before && this.#lostBy(loss, toServer, flags)) {
      this.lost++;
      return false;
    }
    return true;
  }

  /** Sends a UDP datagram; true when it reached the other end. */
  udp(us: number, src: number, dst: number, sport: number, dport: number, payload: number, loss: Loss | null, toServer: boolean): boolean {
    this.sent++;
    const before = loss !== null && loss.where === "before";
    if (before && this.#lostBy(loss, toServer, 0)) {
      this.lost++;
      return false;
    }
    const len = this.w.udp(src, dst, sport, dport, payload);
    if (!this.sink.frame(us, this.w.buf, len)) return false;
    if (!before && this.#lostBy(loss, toServer, 0)) {
      this.lost++;
      return false;
    }
    return true;
  }
}

/** A traffic source: the engine calls `step()` while `nextUs` is the earliest. */
export interface Source {
  readonly nextUs: number;
  step(): void;
}

const US = 1e6;

/** When arrivals happen: constant spacing, Poisson, a ramp or a daily cycle, between start and end. */
export class Arrivals {
  #t: number;
  readonly #end: number;
  readonly #rate: number;
  readonly #kind: "constant" | "poisson" | "ramp" | "diurnal";
  readonly #from: number;
  readonly #to: number;
  readonly #trough: number;
  readonly #period: number;
  readonly #rng: Rng;
  readonly #start: number;

  constructor(t0Us: number, src: { rate: number; start: number; end?: number | undefined; arrival?: unknown }, durationS: number, rng: Rng) {
    this.#start = t0Us + src.start * US;
    this.#end = t0Us + Math.min(src.end ?? durationS, durationS) * US;
    this.#rate = src.rate;
    this.#rng = rng;
    const a = src.arrival ?? "constant";
    this.#from = 1;
    this.#to = 1;
    this.#trough = 1;
    this.#period = 86400;
    if (a === "poisson" || a === "constant") this.#kind = a;
    else if (typeof a === "object" && "ramp" in a) {
      const r = (a as { ramp: { from: number; to: number } }).ramp;
      this.#kind = "ramp";
      this.#from = r.from;
      this.#to = r.to;
    } else {
      const d = (a as { diurnal: { trough: number; period: number } }).diurnal;
      this.#kind = "diurnal";
      this.#trough = d.trough;
      this.#period = d.period;
    }
    // Arrival processes start at `start` (a constant one exactly there).
    this.#t = this.#start;
    if (this.#kind !== "constant") this.#advance();
  }

  /** Rate (per second) at time `us`. */
  rateAt(us: number): number {
    switch (this.#kind) {
      case "ramp": {
        const f = (us - this.#start) / Math.max(1, this.#end - this.#start);
        return this.#rate * (this.#from + (this.#to - this.#from) * f);
      }
      case "diurnal": {
        const phase = ((us - this.#start) / US / this.#period) * 2 * Math.PI;
        // Lowest at the start (night), highest half a period later.
        return this.#rate * (this.#trough + ((1 - this.#trough) * (1 - Math.cos(phase))) / 2);
      }
      default:
        return this.#rate;
    }
  }

  /** The next arrival time (Infinity after the end). */
  get nextUs(): number {
    return this.#t < this.#end ? this.#t : Infinity;
  }

  /** Consumes the current arrival. */
  #advance(): void {
    const r = this.rateAt(this.#t);
    if (r <= 0) {
      this.#t += US;
      return;
    }
    const gap = this.#kind === "constant" ? US / r : this.#rng.exp(US / r);
    this.#t += Math.max(1, Math.round(gap));
  }

  next(): void {
    if (this.#kind === "constant") {
      const r = this.rateAt(this.#t);
      this.#t += r > 0 ? US / r : US;
    } else this.#advance();
  }

  /** The current arrival time rounded to the microsecond. */
  get us(): number {
    return Math.round(this.#t);
  }
}

function parseService(s: string): number {
  return Number(s.split("/")[1]);
}

// ---------------------------------------------------------------------------
// TCP clients (and the connection flood, which is clients that only connect)

/** What a connection does when its one pending event fires. */
const P = {
  SYN: 0,
  SYNACK: 1,
  REQ: 2,
  RESP: 3,
  GOT: 4,
  CFIN: 5,
  SFINACK: 6,
  CLAST: 7,
  SFIN: 8,
  CFINACK: 9,
  SLAST: 10,
  REFUSED: 11,
  GIVEUP: 12,
  HOLD_FIN: 13,
} as const;

/** Linux's initial SYN RTO (TCP_TIMEOUT_INIT, 1 s), doubled per retransmission. */
const SYN_RTO_US = 1_000_000;
/** tcp_retries2: retransmissions of data before the connection is given up. */
const DATA_RETRIES = 15;
/** TCP_RTO_MAX. */
const RTO_MAX_US = 120_000_000;
/** One segment's payload (MSS 1460 less 12 bytes of timestamps). */
const SEG = 1448;

type ClientsSpec = Extract<TrafficSource, { type: "clients" }>;
type ConnFloodSpec = Extract<TrafficSource, { type: "connection-flood" }>;

/**
 * TCP connections from clients to the server, one state machine each, with
 * exactly one pending event per connection in the source's queue. Retransmits
 * SYNs with the kernel's backoff (1 s doubling, tcp_syn_retries) and data with
 * RTO = RTT + max(2·RTT, 200 ms) doubling (tcp_retries2); a FIN lost is sent
 * again; a RST is never retransmitted (a lost one leaves an orphan entry).
 */
export class TcpClients implements Source {
  readonly #net: SimNet;
  readonly #arr: Arrivals;
  readonly #heap = new EventHeap(4096);
  readonly #rng: Rng;
  readonly #legit: boolean;
  readonly #loss: Loss | null;
  readonly #port: number;
  readonly #rttUs: number;
  readonly #dataRtoUs: number;
  readonly #synRetries: number;
  readonly #request: number;
  readonly #response: number;
  readonly #requests: number;
  readonly #thinkUs: number;
  readonly #close: "client-fin" | "server-fin" | "rst" | "none";
  readonly #vanish: number;
  readonly #holdUs: number;
  readonly #clients: number;
  readonly #base: number;
  /** Where the connections go: the server (beyond a gateway for LAN clients), or the gateway itself for a connection flood. */
  readonly #server: number;
  /** LAN clients behind a gateway: their packets' translation is read back from the path. */
  readonly #behind: boolean;
  // Connection pool, struct of arrays.
  #cap = 0;
  #addr = new Uint32Array(0);
  #cport = new Uint16Array(0);
  /** The client's address and port as the server sees them (NAT applied; the client's own without a gateway). */
  #naddr = new Uint32Array(0);
  #nport = new Uint16Array(0);
  #cseq = new Uint32Array(0);
  #sseq = new Uint32Array(0);
  #phase = new Uint8Array(0);
  #tries = new Uint8Array(0);
  #reqLeft = new Int32Array(0);
  #respOff = new Int32Array(0);
  #sentAt = new Float64Array(0);
  readonly #free: number[] = [];
  #nextPort = 0;
  #active = 0;

  /** @param lanSlice the first address and count of this source's share of a gateway's LAN (clients only) */
  constructor(
    net: SimNet,
    spec: ClientsSpec | ConnFloodSpec,
    t0Us: number,
    durationS: number,
    synRetries: number,
    index: number,
    rng: Rng,
    lanSlice: { first: number; count: number } | null = null,
  ) {
    this.#net = net;
    this.#rng = rng;
    this.#arr = new Arrivals(t0Us, spec, durationS, rng);
    this.#port = parseService(spec.service);
    this.#synRetries = synRetries;
    if (spec.type === "clients") {
      this.#legit = true;
      this.#loss = spec.loss ?? null;
      this.#rttUs = Math.round(spec.rtt * US);
      this.#request = spec.request;
      this.#response = spec.response;
      this.#requests = spec.requests;
      this.#thinkUs = Math.round(spec.think * US);
      this.#close = spec.close;
      this.#vanish = spec.vanish;
      this.#holdUs = 0;
      this.#clients = spec.clients;
    } else {
      this.#legit = false;
      this.#loss = null;
      this.#rttUs = 20_000;
      this.#request = 0;
      this.#response = 0;
      this.#requests = 0;
      this.#thinkUs = 0;
      this.#close = spec.hold === undefined ? "none" : "client-fin";
      this.#vanish = 0;
      this.#holdUs = spec.hold === undefined ? 0 : Math.round(spec.hold * US);
      this.#clients = spec.bots;
    }
    this.#dataRtoUs = this.#rttUs + Math.max(2 * this.#rttUs, 200_000);
    this.#behind = lanSlice !== null;
    this.#server = this.#legit ? net.server : net.host;
    if (lanSlice !== null) {
      this.#base = (lanSlice.first - 1) >>> 0;
      this.#clients = Math.min(this.#clients, lanSlice.count);
    } else {
      // Clients of source i come from 100.64.0.0/10 (shared address space), one /16-ish block per source.
      this.#base = (0x64400000 + ((index & 0x3f) << 16)) >>> 0;
    }
    this.#grow(1024);
  }

  get nextUs(): number {
    const a = this.#arr.nextUs;
    const h = this.#heap.peekTime();
    return a < h ? a : h;
  }

  /** Connections open (not yet finished or given up). */
  get active(): number {
    return this.#active;
  }

  #grow(n: number): void {
    const cap = Math.max(n, this.#cap * 2);
    const g32 = (a: Uint32Array) => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.#addr = g32(this.#addr);
    this.#naddr = g32(this.#naddr);
    this.#cseq = g32(this.#cseq);
    this.#sseq = g32(this.#sseq);
    const p = new Uint16Array(cap);
    p.set(this.#cport);
    this.#cport = p;
    const np = new Uint16Array(cap);
    np.set(this.#nport);
    this.#nport = np;
    const ph = new Uint8Array(cap);
    ph.set(this.#phase);
    this.#phase = ph;
    const tr = new Uint8Array(cap);
    tr.set(this.#tries);
    this.#tries = tr;
    const rl = new Int32Array(cap);
    rl.set(this.#reqLeft);
    this.#reqLeft = rl;
    const ro = new Int32Array(cap);
    ro.set(this.#respOff);
    this.#respOff = ro;
    const sa = new Float64Array(cap);
    sa.set(this.#sentAt);
    this.#sentAt = sa;
    for (let i = cap - 1; i >= this.#cap; i--) this.#free.push(i);
    this.#cap = cap;
  }

  step(): void {
    if (this.#arr.nextUs <= this.#heap.peekTime()) {
      const us = this.#arr.us;
      this.#arr.next();
      this.#open(us);
      return;
    }
    const t = this.#heap.peekTime();
    const c = this.#heap.pop();
    this.#fire(c, Math.round(t));
  }

  #open(us: number): void {
    if (this.#free.length === 0) this.#grow(this.#cap * 2);
    const c = this.#free.pop() as number;
    this.#active++;
    const r = this.#rng;
    this.#addr[c] = (this.#base + 1 + r.below(this.#clients)) >>> 0;
    // Ephemeral ports cycle through Linux's default range, 32768–60999.
    this.#cport[c] = 32768 + (this.#nextPort = (this.#nextPort + 1 + r.below(7)) % 28232);
    this.#naddr[c] = this.#addr[c];
    this.#nport[c] = this.#cport[c];
    this.#cseq[c] = r.u32();
    this.#sseq[c] = r.u32();
    this.#tries[c] = 0;
    this.#reqLeft[c] = this.#requests;
    this.#respOff[c] = 0;
    if (this.#legit) this.#net.legit.attempted++;
    this.#fire(c, us, P.SYN);
  }

  #end(c: number, outcome: "completed" | "failed" | "vanished" | "none"): void {
    const l = this.#net.legit;
    if (this.#legit) {
      if (outcome === "completed") l.completed++;
      else if (outcome === "failed") l.failed++;
      else if (outcome === "vanished") {
        l.vanished++;
        l.attempted--;
      }
    }
    this.#active--;
    this.#free.push(c);
  }

  #at(c: number, us: number, phase: number): void {
    this.#phase[c] = phase;
    this.#heap.push(us, c);
  }

  /** Runs connection c's pending action (or `phase` when given) at time us. */
  #fire(c: number, us: number, phase = this.#phase[c] as number): void {
    const net = this.#net;
    const sp = this.#port;
    const half = this.#rttUs >>> 1;
    const loss = this.#loss;
    switch (phase) {
      case P.SYN: {
        const k = this.#tries[c] as number;
        this.#sentAt[c] = us;
        const ok = this.#up(c, us, this.#cseq[c] as number, 0, TCP_SYN, 64240, SYN_OPTIONS, 0, loss);
        if (ok) {
          this.#at(c, us + half, net.isOpen("tcp", sp) ? P.SYNACK : P.REFUSED);
          return;
        }
        this.#synTimeout(c, us, k);
        return;
      }
      case P.SYNACK: {
        const ok = this.#down(c, us, this.#sseq[c] as number, ((this.#cseq[c] as number) + 1) >>> 0, TCP_SYN | TCP_ACK, 65160, SYN_OPTIONS, 0, loss);
        if (ok) {
          this.#cseq[c] = ((this.#cseq[c] as number) + 1) >>> 0;
          this.#sseq[c] = ((this.#sseq[c] as number) + 1) >>> 0;
          this.#tries[c] = 0;
          this.#at(c, us + half, P.REQ);
          return;
        }
        // The client's SYN timer fires; it retransmits the SYN.
        this.#synTimeout(c, this.#sentAt[c] as number, this.#tries[c] as number);
        return;
      }
      case P.REFUSED: {
        this.#down(c, us, 0, ((this.#cseq[c] as number) + 1) >>> 0, TCP_RST | TCP_ACK, 0, NO_OPTIONS, 0, loss);
        this.#end(c, "failed");
        return;
      }
      case P.GIVEUP:
        this.#end(c, "failed");
        return;
      case P.REQ: {
        const cs = this.#cseq[c] as number;
        const ss = this.#sseq[c] as number;
        if (this.#tries[c] === 0 && this.#reqLeft[c] === this.#requests && this.#vanish > 0 && this.#rng.next() < this.#vanish) {
          // Completes the handshake, then the host is gone.
          this.#up(c, us, cs, ss, TCP_ACK, 502, NO_OPTIONS, 0, loss);
          this.#end(c, "vanished");
          return;
        }
        if (!this.#legit) {
          this.#up(c, us, cs, ss, TCP_ACK, 502, NO_OPTIONS, 0, null);
          if (this.#close === "none") this.#end(c, "none");
          else this.#at(c, us + this.#holdUs, P.CFIN);
          return;
        }
        this.#sentAt[c] = us;
        const ok = this.#up(c, us, cs, ss, TCP_PSH | TCP_ACK, 502, NO_OPTIONS, this.#request, loss);
        if (ok) {
          this.#cseq[c] = (cs + this.#request) >>> 0;
          this.#tries[c] = 0;
          this.#respOff[c] = 0;
          this.#at(c, us + half, P.RESP);
        } else this.#dataTimeout(c, us, P.REQ);
        return;
      }
      case P.RESP: {
        // The response goes out in back-to-back segments; the first one lost stops the burst and is retransmitted.
        let off = this.#respOff[c] as number;
        let t = us;
        while (off < this.#response) {
          const n = Math.min(SEG, this.#response - off);
          const ok = this.#down(c, t, ((this.#sseq[c] as number) + off) >>> 0, this.#cseq[c] as number, TCP_PSH | TCP_ACK, 509, NO_OPTIONS, n, loss);
          if (!ok) break;
          off += n;
          t += 12;
        }
        this.#respOff[c] = off;
        if (off >= this.#response) {
          this.#sseq[c] = ((this.#sseq[c] as number) + off) >>> 0;
          this.#tries[c] = 0;
          this.#at(c, t + half, P.GOT);
        } else {
          this.#sentAt[c] = t;
          this.#dataTimeout(c, t, P.RESP);
        }
        return;
      }
      case P.GOT: {
        const left = (this.#reqLeft[c] as number) - 1;
        this.#reqLeft[c] = left;
        if (left > 0) {
          this.#at(c, us + this.#thinkUs, P.REQ);
          return;
        }
        const l = net.legit;
        l.completed++;
        // Counted now; the close below only matters to the table.
        this.#reqLeft[c] = -1;
        this.#closeStart(c, us);
        return;
      }
      case P.CFIN: {
        this.#sentAt[c] = us;
        const ok = this.#up(c, us, this.#cseq[c] as number, this.#sseq[c] as number, TCP_FIN | TCP_ACK, 502, NO_OPTIONS, 0, loss);
        if (ok) {
          this.#cseq[c] = ((this.#cseq[c] as number) + 1) >>> 0;
          this.#tries[c] = 0;
          this.#at(c, us + half, P.SFINACK);
        } else this.#closeTimeout(c, us, P.CFIN);
        return;
      }
      case P.SFINACK: {
        const ok = this.#down(c, us, this.#sseq[c] as number, this.#cseq[c] as number, TCP_FIN | TCP_ACK, 509, NO_OPTIONS, 0, loss);
        if (ok) {
          this.#sseq[c] = ((this.#sseq[c] as number) + 1) >>> 0;
          this.#at(c, us + half, P.CLAST);
        } else {
          // The client's FIN timer: it sends its FIN again (same sequence number).
          this.#cseq[c] = ((this.#cseq[c] as number) - 1) >>> 0;
          this.#closeTimeout(c, this.#sentAt[c] as number, P.CFIN);
        }
        return;
      }
      case P.CLAST: {
        this.#sentAt[c] = us;
        const ok = this.#up(c, us, this.#cseq[c] as number, this.#sseq[c] as number, TCP_ACK, 502, NO_OPTIONS, 0, loss);
        if (ok) this.#finish(c);
        else {
          this.#sseq[c] = ((this.#sseq[c] as number) - 1) >>> 0;
          this.#closeTimeout(c, us, P.SFINACK);
        }
        return;
      }
      case P.SFIN: {
        this.#sentAt[c] = us;
        const ok = this.#down(c, us, this.#sseq[c] as number, this.#cseq[c] as number, TCP_FIN | TCP_ACK, 509, NO_OPTIONS, 0, loss);
        if (ok) {
          this.#sseq[c] = ((this.#sseq[c] as number) + 1) >>> 0;
          this.#tries[c] = 0;
          this.#at(c, us + half, P.CFINACK);
        } else this.#closeTimeout(c, us, P.SFIN);
        return;
      }
      case P.CFINACK: {
        const ok = this.#up(c, us, this.#cseq[c] as number, this.#sseq[c] as number, TCP_FIN | TCP_ACK, 502, NO_OPTIONS, 0, loss);
        if (ok) {
          this.#cseq[c] = ((this.#cseq[c] as number) + 1) >>> 0;
          this.#at(c, us + half, P.SLAST);
        } else {
          this.#sseq[c] = ((this.#sseq[c] as number) - 1) >>> 0;
          this.#closeTimeout(c, this.#sentAt[c] as number, P.SFIN);
        }
        return;
      }
      case P.SLAST: {
        this.#sentAt[c] = us;
        const ok = this.#down(c, us, this.#sseq[c] as number, this.#cseq[c] as number, TCP_ACK, 509, NO_OPTIONS, 0, loss);
        if (ok) this.#finish(c);
        else {
          this.#cseq[c] = ((this.#cseq[c] as number) - 1) >>> 0;
          this.#closeTimeout(c, us, P.CFINACK);
        }
        return;
      }
      default:
        return;
    }
  }

  /** A client's segment to the server; true when it got there. Behind a gateway, records how the gateway translated it. */
  #up(c: number, us: number, seq: number, ack: number, flags: number, win: number, opts: Uint8Array, payload: number, loss: Loss | null): boolean {
    const net = this.#net;
    const a = this.#addr[c] as number;
    if (!net.tcp(us, a, this.#server, this.#cport[c] as number, this.#port, seq, ack, flags, win, opts, payload, loss, true)) return false;
    const lan = this.#behind ? net.lan : null;
    if (lan !== null) {
      this.#naddr[c] = lan.view.src[0] as number;
      this.#nport[c] = lan.view.sport;
    }
    return true;
  }

  /** The server's segment to the client (to its translated address behind a gateway); true when the client got it. */
  #down(c: number, us: number, seq: number, ack: number, flags: number, win: number, opts: Uint8Array, payload: number, loss: Loss | null): boolean {
    const net = this.#net;
    if (!net.tcp(us, this.#server, this.#naddr[c] as number, this.#port, this.#nport[c] as number, seq, ack, flags, win, opts, payload, loss, false))
      return false;
    return !this.#behind || net.deliveredTo(this.#addr[c] as number);
  }

  #closeStart(c: number, us: number): void {
    switch (this.#close) {
      case "client-fin":
        this.#fire(c, us, P.CFIN);
        return;
      case "server-fin":
        this.#fire(c, us, P.SFIN);
        return;
      case "rst":
        this.#up(c, us, this.#cseq[c] as number, 0, TCP_RST, 0, NO_OPTIONS, 0, this.#loss);
        this.#finish(c);
        return;
      default:
        this.#finish(c);
    }
  }

  #finish(c: number): void {
    this.#end(c, "none");
  }

  #synTimeout(c: number, sentUs: number, k: number): void {
    const rto = SYN_RTO_US * 2 ** k;
    if (k >= this.#synRetries) {
      // The last SYN's timer runs out: connect() fails with ETIMEDOUT.
      this.#at(c, sentUs + rto, P.GIVEUP);
      return;
    }
    this.#tries[c] = k + 1;
    this.#at(c, sentUs + rto, P.SYN);
  }

  #dataTimeout(c: number, sentUs: number, phase: number): void {
    const k = this.#tries[c] as number;
    const rto = Math.min(this.#dataRtoUs * 2 ** k, RTO_MAX_US);
    if (k >= DATA_RETRIES) {
      this.#at(c, sentUs + rto, P.GIVEUP);
      return;
    }
    this.#tries[c] = k + 1;
    this.#at(c, sentUs + rto, phase);
  }

  #closeTimeout(c: number, sentUs: number, phase: number): void {
    const k = this.#tries[c] as number;
    if (k >= DATA_RETRIES) {
      this.#finish(c);
      return;
    }
    this.#tries[c] = k + 1;
    this.#at(c, sentUs + Math.min(this.#dataRtoUs * 2 ** k, RTO_MAX_US), phase);
  }
}

// ---------------------------------------------------------------------------
// DNS lookups: an A and an AAAA query from one socket, a resolver that retries.

type DnsSpec = Extract<TrafficSource, { type: "dns" }>;

const D = { QUERY: 0, ANSWER: 1, GIVEUP: 2 } as const;

/** Lookups of a stub resolver: both queries at once, answers after the RTT, a retry of the unanswered after `timeout`. */
export class DnsClients implements Source {
  readonly #net: SimNet;
  readonly #arr: Arrivals;
  readonly #heap = new EventHeap(1024);
  readonly #rng: Rng;
  readonly #spec: DnsSpec;
  readonly #port: number;
  readonly #half: number;
  readonly #timeoutUs: number;
  readonly #base: number;
  #addr = new Uint32Array(1024);
  #sport = new Uint16Array(1024);
  /** The socket's address and port as the server sees them (NAT applied behind a gateway). */
  #naddr = new Uint32Array(1024);
  #nport = new Uint16Array(1024);
  readonly #behind: boolean;
  readonly #clients: number;
  /** Bits: 1 = A delivered to the server, 2 = AAAA delivered, 4 = A answered, 8 = AAAA answered. */
  #bits = new Uint8Array(1024);
  #tries = new Uint8Array(1024);
  #phase = new Uint8Array(1024);
  #sentAt = new Float64Array(1024);
  readonly #free: number[] = [];
  #nextPort = 0;

  /** @param lanSlice the first address and count of this source's share of a gateway's LAN */
  constructor(net: SimNet, spec: DnsSpec, t0Us: number, durationS: number, index: number, rng: Rng, lanSlice: { first: number; count: number } | null = null) {
    this.#net = net;
    this.#spec = spec;
    this.#rng = rng;
    this.#arr = new Arrivals(t0Us, spec, durationS, rng);
    this.#port = parseService(spec.service);
    this.#half = Math.round((spec.rtt * US) / 2);
    this.#timeoutUs = Math.round(spec.timeout * US);
    this.#behind = lanSlice !== null;
    this.#base = lanSlice !== null ? (lanSlice.first - 1) >>> 0 : (0x64400000 + ((index & 0x3f) << 16)) >>> 0;
    this.#clients = lanSlice !== null ? Math.min(spec.clients, lanSlice.count) : spec.clients;
    for (let i = 1023; i >= 0; i--) this.#free.push(i);
  }

  get nextUs(): number {
    const a = this.#arr.nextUs;
    const h = this.#heap.peekTime();
    return a < h ? a : h;
  }

  #grow(): void {
    const n = this.#addr.length;
    const cap = n * 2;
    const g = <T extends Uint32Array | Uint16Array | Uint8Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.#addr = g(this.#addr, (k) => new Uint32Array(k));
    this.#sport = g(this.#sport, (k) => new Uint16Array(k));
    this.#naddr = g(this.#naddr, (k) => new Uint32Array(k));
    this.#nport = g(this.#nport, (k) => new Uint16Array(k));
    this.#bits = g(this.#bits, (k) => new Uint8Array(k));
    this.#tries = g(this.#tries, (k) => new Uint8Array(k));
    this.#phase = g(this.#phase, (k) => new Uint8Array(k));
    this.#sentAt = g(this.#sentAt, (k) => new Float64Array(k));
    for (let i = cap - 1; i >= n; i--) this.#free.push(i);
  }

  step(): void {
    if (this.#arr.nextUs <= this.#heap.peekTime()) {
      const us = this.#arr.us;
      this.#arr.next();
      if (this.#free.length === 0) this.#grow();
      const q = this.#free.pop() as number;
      this.#addr[q] = (this.#base + 1 + this.#rng.below(this.#clients)) >>> 0;
      this.#sport[q] = 32768 + (this.#nextPort = (this.#nextPort + 1 + this.#rng.below(7)) % 28232);
      this.#naddr[q] = this.#addr[q];
      this.#nport[q] = this.#sport[q];
      this.#bits[q] = 0;
      this.#tries[q] = 0;
      this.#net.legit.attempted++;
      this.#query(q, us);
      return;
    }
    const t = Math.round(this.#heap.peekTime());
    const q = this.#heap.pop();
    const ph = this.#phase[q] as number;
    if (ph === D.QUERY) this.#query(q, t);
    else if (ph === D.ANSWER) this.#answer(q, t);
    else {
      this.#net.legit.failed++;
      this.#free.push(q);
    }
  }

  #query(q: number, us: number): void {
    const net = this.#net;
    const loss = this.#spec.loss ?? null;
    let b = this.#bits[q] as number;
    const a = this.#addr[q] as number;
    const sp = this.#sport[q] as number;
    // Queries already answered are not asked again.
    if (!(b & 4) && net.udp(us, a, net.server, sp, this.#port, 40, loss, true)) b |= this.#sent(q, 1);
    if (!(b & 8) && net.udp(us + 1, a, net.server, sp, this.#port, 40, loss, true)) b |= this.#sent(q, 2);
    this.#bits[q] = b;
    this.#sentAt[q] = us;
    if (b & 3 && net.isOpen("udp", this.#port)) {
      this.#phase[q] = D.ANSWER;
      this.#heap.push(us + 1 + this.#half, q);
    } else this.#retry(q, us);
  }

  #answer(q: number, us: number): void {
    const net = this.#net;
    const loss = this.#spec.loss ?? null;
    let b = this.#bits[q] as number;
    const a = this.#addr[q] as number;
    const na = this.#naddr[q] as number;
    const np = this.#nport[q] as number;
    const back = this.#behind;
    if (b & 1 && net.udp(us, net.server, na, this.#port, np, 120, loss, false) && (!back || net.deliveredTo(a))) b |= 4;
    if (b & 2 && net.udp(us + 1, net.server, na, this.#port, np, 140, loss, false) && (!back || net.deliveredTo(a))) b |= 8;
    b &= ~3;
    this.#bits[q] = b;
    if ((b & 12) === 12) {
      net.legit.completed++;
      this.#free.push(q);
      return;
    }
    this.#retry(q, this.#sentAt[q] as number);
  }

  /** A query got to the server: returns `bit`, having recorded, behind a gateway, how the gateway translated the socket. */
  #sent(q: number, bit: number): number {
    const lan = this.#behind ? this.#net.lan : null;
    if (lan !== null) {
      this.#naddr[q] = lan.view.src[0] as number;
      this.#nport[q] = lan.view.sport;
    }
    return bit;
  }

  #retry(q: number, sentUs: number): void {
    const k = (this.#tries[q] as number) + 1;
    this.#tries[q] = k;
    this.#phase[q] = k >= this.#spec.attempts ? D.GIVEUP : D.QUERY;
    this.#heap.push(sentUs + this.#timeoutUs, q);
  }
}

// ---------------------------------------------------------------------------
// Floods and scans: one packet per arrival, a fixed-delay answer from the server.

/** A FIFO of delayed server answers (constant delay keeps them in time order). */
class Fifo {
  t = new Float64Array(1024);
  a = new Uint32Array(1024);
  p = new Uint32Array(1024);
  s = new Uint32Array(1024);
  head = 0;
  n = 0;
  push(us: number, addr: number, port: number, seq: number): void {
    if (this.n === this.t.length) this.#grow();
    const i = (this.head + this.n) & (this.t.length - 1);
    this.t[i] = us;
    this.a[i] = addr;
    this.p[i] = port;
    this.s[i] = seq;
    this.n++;
  }
  get nextUs(): number {
    return this.n === 0 ? Infinity : (this.t[this.head] as number);
  }
  /** Index of the head; call `shift()` after reading it. */
  shift(): void {
    this.head = (this.head + 1) & (this.t.length - 1);
    this.n--;
  }
  #grow(): void {
    const cap = this.t.length * 2;
    const mk = <T extends Float64Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const b = make(cap);
      for (let k = 0; k < this.n; k++) b[k] = old[(this.head + k) & (old.length - 1)] as number;
      return b;
    };
    this.t = mk(this.t, (k) => new Float64Array(k));
    this.a = mk(this.a, (k) => new Uint32Array(k));
    this.p = mk(this.p, (k) => new Uint32Array(k));
    this.s = mk(this.s, (k) => new Uint32Array(k));
    this.head = 0;
  }
}

type SynFloodSpec = Extract<TrafficSource, { type: "syn-flood" }>;
type UdpFloodSpec = Extract<TrafficSource, { type: "udp-flood" }>;
type ScanSpec = Extract<TrafficSource, { type: "port-scan" }>;

/** A random routable-looking IPv4 source (1.0.0.1 – 223.255.255.254). */
function spoofedAddr(r: Rng): number {
  return ((((1 + r.below(222)) << 24) | (r.below(65536) << 8) | (1 + r.below(254))) >>> 0) >>> 0;
}

/** Server answers leave 50 µs after the packet they answer. */
const ANSWER_US = 50;
/** Backscatter RSTs come back one 40 ms round trip after the SYN/ACK. */
const BACKSCATTER_US = 40_000;

/** SYN flood: spoofed or fixed sources; SYN/ACKs from the server; RSTs from spoofed hosts that exist. */
export class SynFlood implements Source {
  readonly #net: SimNet;
  readonly #spec: SynFloodSpec;
  readonly #arr: Arrivals;
  readonly #rng: Rng;
  readonly #port: number;
  readonly #fixed: number;
  readonly #synack = new Fifo();
  readonly #rst = new Fifo();
  readonly #refused = new Fifo();
  #sport = 1024;

  constructor(net: SimNet, spec: SynFloodSpec, t0Us: number, durationS: number, rng: Rng) {
    this.#net = net;
    this.#spec = spec;
    this.#rng = rng;
    this.#arr = new Arrivals(t0Us, { ...spec, arrival: "constant" }, durationS, rng);
    this.#port = parseService(spec.service);
    this.#fixed = spec.source === undefined ? 0x0a0a0a0a : ipv4Word(spec.source);
  }

  get nextUs(): number {
    return Math.min(this.#arr.nextUs, this.#synack.nextUs, this.#rst.nextUs, this.#refused.nextUs);
  }

  step(): void {
    const net = this.#net;
    const r = this.#rng;
    const z = this.#refused.nextUs;
    if (z <= this.#arr.nextUs && z <= this.#synack.nextUs && z <= this.#rst.nextUs) {
      // A closed port: the server answers RST/ACK.
      const f = this.#refused;
      const i = f.head;
      net.tcp(
        f.t[i] as number,
        net.host,
        f.a[i] as number,
        this.#port,
        f.p[i] as number,
        0,
        ((f.s[i] as number) + 1) >>> 0,
        TCP_RST | TCP_ACK,
        0,
        NO_OPTIONS,
        0,
        null,
        false,
      );
      f.shift();
      return;
    }
    const a = this.#arr.nextUs;
    const s = this.#synack.nextUs;
    const x = this.#rst.nextUs;
    if (x <= a && x <= s) {
      const f = this.#rst;
      const i = f.head;
      net.tcp(f.t[i] as number, f.a[i] as number, net.host, f.p[i] as number, this.#port, f.s[i] as number, 0, TCP_RST, 0, NO_OPTIONS, 0, null, true);
      f.shift();
      return;
    }
    if (s <= a) {
      const f = this.#synack;
      const i = f.head;
      const us = f.t[i] as number;
      const src = f.a[i] as number;
      const sp = f.p[i] as number;
      const seq = f.s[i] as number;
      f.shift();
      const ok = net.tcp(us, net.host, src, this.#port, sp, r.u32(), (seq + 1) >>> 0, TCP_SYN | TCP_ACK, 65160, SYN_OPTIONS, 0, null, false);
      if (ok && this.#spec.backscatter > 0 && r.next() < this.#spec.backscatter) this.#rst.push(us + BACKSCATTER_US, src, sp, (seq + 1) >>> 0);
      return;
    }
    const us = this.#arr.us;
    this.#arr.next();
    const src = this.#spec.spoofed ? spoofedAddr(r) : this.#fixed;
    const sp = this.#spec.spoofed ? 1024 + r.below(64512) : (this.#sport = this.#sport >= 65535 ? 1024 : this.#sport + 1);
    const seq = r.u32();
    const ok = net.tcp(us, src, net.host, sp, this.#port, seq, 0, TCP_SYN, 1024, NO_OPTIONS, 0, null, true);
    if (!ok) return;
    if (!net.isOpen("tcp", this.#port)) this.#refused.push(us + ANSWER_US, src, sp, seq);
    else if (this.#spec.answered) this.#synack.push(us + ANSWER_US, src, sp, seq);
  }
}

/** UDP flood: datagrams from spoofed (or one) source to a port; nothing answers. */
export class UdpFlood implements Source {
  readonly #net: SimNet;
  readonly #spec: UdpFloodSpec;
  readonly #arr: Arrivals;
  readonly #rng: Rng;
  readonly #port: number;

  constructor(net: SimNet, spec: UdpFloodSpec, t0Us: number, durationS: number, rng: Rng) {
    this.#net = net;
    this.#spec = spec;
    this.#rng = rng;
    this.#arr = new Arrivals(t0Us, { ...spec, arrival: "constant" }, durationS, rng);
    this.#port = parseService(spec.service);
  }

  get nextUs(): number {
    return this.#arr.nextUs;
  }

  step(): void {
    const us = this.#arr.us;
    this.#arr.next();
    const r = this.#rng;
    const src = this.#spec.spoofed ? spoofedAddr(r) : 0x0a0a0a0b;
    this.#net.udp(us, src, this.#net.host, 1024 + r.below(64512), this.#port, this.#spec.size, null, true);
  }
}

/** A SYN scan: one source probes the ports in order; open ports answer SYN/ACK (the scanner resets), closed ones RST. */
export class PortScan implements Source {
  readonly #net: SimNet;
  readonly #arr: Arrivals;
  readonly #src: number;
  readonly #first: number;
  readonly #last: number;
  readonly #answers = new Fifo();
  readonly #resets = new Fifo();
  readonly #rng: Rng;
  #port: number;

  constructor(net: SimNet, spec: ScanSpec, t0Us: number, durationS: number, rng: Rng) {
    this.#net = net;
    this.#rng = rng;
    this.#arr = new Arrivals(t0Us, { ...spec, arrival: "constant" }, durationS, rng);
    this.#src = ipv4Word(spec.source);
    this.#first = spec.ports[0];
    this.#last = spec.ports[1];
    this.#port = this.#first;
  }

  get nextUs(): number {
    return Math.min(this.#arr.nextUs, this.#answers.nextUs, this.#resets.nextUs);
  }

  step(): void {
    const net = this.#net;
    const a = this.#arr.nextUs;
    const b = this.#answers.nextUs;
    const c = this.#resets.nextUs;
    if (c <= a && c <= b) {
      const f = this.#resets;
      const i = f.head;
      net.tcp(f.t[i] as number, this.#src, net.host, 40000, f.p[i] as number, f.s[i] as number, 0, TCP_RST, 0, NO_OPTIONS, 0, null, true);
      f.shift();
      return;
    }
    if (b <= a) {
      const f = this.#answers;
      const i = f.head;
      const us = f.t[i] as number;
      const port = f.p[i] as number;
      const seq = f.s[i] as number;
      f.shift();
      if (net.isOpen("tcp", port)) {
        if (net.tcp(us, net.host, this.#src, port, 40000, this.#rng.u32(), (seq + 1) >>> 0, TCP_SYN | TCP_ACK, 65160, SYN_OPTIONS, 0, null, false)) {
          this.#resets.push(us + ANSWER_US, 0, port, (seq + 1) >>> 0);
        }
      } else net.tcp(us, net.host, this.#src, port, 40000, 0, (seq + 1) >>> 0, TCP_RST | TCP_ACK, 0, NO_OPTIONS, 0, null, false);
      return;
    }
    const us = this.#arr.us;
    this.#arr.next();
    const port = this.#port;
    this.#port = port >= this.#last ? this.#first : port + 1;
    const seq = this.#rng.u32();
    if (net.tcp(us, this.#src, net.host, 40000, port, seq, 0, TCP_SYN, 1024, SYN_OPTIONS, 0, null, true)) this.#answers.push(us + ANSWER_US, 0, port, seq);
  }
}

/** An IPv4 address as a host-order word. */
export function ipv4Word(s: string): number {
  const p = s.split(".").map(Number);
  return (((p[0] ?? 0) << 24) | ((p[1] ?? 0) << 16) | ((p[2] ?? 0) << 8) | (p[3] ?? 0)) >>> 0;
}

/** A gateway's LAN prefix ("192.168.0.0/16", validated by the scenario schema) as its network address and size. */
export function lanPrefix(prefix: string): { net: number; size: number } {
  const [addr = "", len = "32"] = prefix.split("/");
  const bits = Number(len);
  const size = 2 ** (32 - bits);
  return { net: (ipv4Word(addr) & ~(size - 1)) >>> 0, size };
}

/** Builds the sources of a scenario, each with its own random stream. */
export function makeSources(net: SimNet, s: Scenario, t0Us: number, synRetries: number): Source[] {
  const captures = new Map<string, CaptureFrames>();
  // Behind a gateway, the LAN's hosts (all but the network, broadcast and gateway addresses) are shared out among the
  // client sources, so two sources never open the same tuple from one address.
  const lan = net.lan;
  const lanSources = lan === null ? [] : s.traffic.flatMap((t, i) => (t.type === "clients" || t.type === "dns" ? [i] : []));
  const sliceOf = (i: number): { first: number; count: number } | null => {
    const k = lanSources.indexOf(i);
    if (lan === null || k < 0) return null;
    const usable = lan.size - 3;
    const lo = Math.floor((k * usable) / lanSources.length);
    const hi = Math.floor(((k + 1) * usable) / lanSources.length);
    return { first: (lan.net + 2 + lo) >>> 0, count: Math.max(1, hi - lo) };
  };
  return s.traffic.map((t, i) => {
    const r = new Rng((s.seed * 0x9e3779b1 + (i + 1) * 0x85ebca6b) >>> 0);
    switch (t.type) {
      case "clients":
        return new TcpClients(net, t, t0Us, s.duration, synRetries, i, r, sliceOf(i));
      case "connection-flood":
        return new TcpClients(net, t, t0Us, s.duration, synRetries, i, r);
      case "dns":
        return new DnsClients(net, t, t0Us, s.duration, i, r, sliceOf(i));
      case "syn-flood":
        return new SynFlood(net, t, t0Us, s.duration, r);
      case "udp-flood":
        return new UdpFlood(net, t, t0Us, s.duration, r);
      case "port-scan":
        return new PortScan(net, t, t0Us, s.duration, r);
      case "capture": {
        let frames = captures.get(t.file);
        if (frames === undefined) {
          frames = loadCapture(t.file);
          captures.set(t.file, frames);
        }
        return new CaptureTraffic(net.sink, frames, t, t0Us, s.duration, s.host.address);
      }
    }
    throw new Error("unreachable");
  });
}
