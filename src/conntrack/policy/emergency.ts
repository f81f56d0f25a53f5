/**
 * `emergency`: Suricata's flow emergency mode on top of the kernel's table.
 * When the table reaches `emergency.enter` × nf_conntrack_max, the tracker
 * enters emergency: entries idle longer than the emergency timeout of their
 * kind expire (TCP: new 5 s, established 100 s, closing 10 s; other
 * protocols: new 10 s, established 100 s — Suricata's emergency-* defaults),
 * and only a TCP SYN without ACK may create TCP state (a mid-stream pickup
 * is refused). Once a second the table is checked; after
 * `emergency.checks` consecutive checks with more than `emergency.recovery`
 * of it free (30 checks, 30 %), the mode ends. When the table is full
 * nonetheless, the kernel's early drop applies.
 *
 * Origin: Suricata src/flow-manager.c (FLOW_EMERGENCY, emerg_over_cnt,
 * flow.emergency-recovery), suricata.yaml flow-timeouts emergency-*.
 * Trade-off: hysteresis keeps the mode from flapping and the short timeouts
 * free the table fast, but for the whole episode every connection idle for
 * 100 s is cut, and connections whose entry was lost cannot be picked up
 * again until the mode ends.
 */
import { IPPROTO, TCP_FLAG } from "../../packet/view.js";
import type { PacketView } from "../../packet/view.js";
import { HZ } from "../jiffies.js";
import { EVICT_REASON, REFUSE_REASON } from "./policy.js";
import type { PolicyHost, PolicyOptionSpec, TablePolicy } from "./policy.js";
import { KIND, kindOf, reapIdle } from "./common.js";
import type { TupleScratch } from "../tuple.js";

const sec = (doc: string, name: string, key: string, d: number): PolicyOptionSpec => ({ name, key, doc, default: d, min: 0, max: 432000 });

export const EMERGENCY_OPTIONS: readonly PolicyOptionSpec[] = [
  { name: "enter", key: "enter", doc: "occupancy (fraction of nf_conntrack_max) that starts emergency mode", default: 1, min: 0.01, max: 1 },
  { name: "recovery", key: "recovery", doc: "free fraction of the table that counts as a healthy check", default: 0.3, min: 0, max: 0.99 },
  { name: "checks", key: "checks", doc: "consecutive healthy once-a-second checks that end emergency mode", default: 30, min: 1, max: 86400, integer: true },
  sec("TCP entries before the handshake completed: emergency timeout, seconds", "tcp-new", "tcpNew", 5),
  sec("TCP established: emergency timeout, seconds", "tcp-established", "tcpEstablished", 100),
  sec("TCP closing states: emergency timeout, seconds", "tcp-closed", "tcpClosed", 10),
  sec("other protocols before a reply: emergency timeout, seconds", "other-new", "otherNew", 10),
  sec("other protocols after a reply: emergency timeout, seconds", "other-established", "otherEstablished", 100),
];

const SYN_MASK = TCP_FLAG.SYN | TCP_FLAG.ACK | TCP_FLAG.RST | TCP_FLAG.FIN;

export class EmergencyPolicy implements TablePolicy {
  readonly name = "emergency" as const;
  readonly options: Readonly<Record<string, number | string>>;
  readonly watchFrom: number;
  readonly wantsTicks = true;
  readonly sources = null;
  readonly bytes = 0;
  level = 0;
  readonly #enterAt: number;
  readonly #healthyBelow: number;
  readonly #checks: number;
  /** Emergency timeouts in jiffies: TCP new, established, closing; other new, established. */
  readonly #tj: readonly [number, number, number, number, number];
  readonly #floorJ: number;
  #healthy = 0;
  #host: PolicyHost | null = null;
  readonly #limit = (slot: number): number => {
    const h = this.#host as PolicyHost;
    const k = kindOf(h, slot);
    if (h.table.proto[slot] === IPPROTO.TCP) return k === KIND.NEW ? this.#tj[0] : k === KIND.ESTABLISHED ? this.#tj[1] : this.#tj[2];
    return k === KIND.NEW ? this.#tj[3] : this.#tj[4];
  };

  constructor(options: Readonly<Record<string, number | string>>, capacity: number) {
    this.options = options;
    this.#enterAt = capacity === 0 ? Infinity : Math.max(1, Math.ceil((options.enter as number) * capacity));
    this.#healthyBelow = capacity * (1 - (options.recovery as number));
    this.#checks = options.checks as number;
    const j = (k: string) => Math.round((options[k] as number) * HZ);
    this.#tj = [j("tcpNew"), j("tcpEstablished"), j("tcpClosed"), j("otherNew"), j("otherEstablished")];
    this.#floorJ = Math.min(...this.#tj);
    this.watchFrom = this.#enterAt;
  }

  get levelName(): string {
    return this.level === 0 ? "normal" : "emergency";
  }

  admit(host: PolicyHost, t: TupleScratch, p: PacketView): boolean {
    if (this.level === 0) {
      if (host.count < this.#enterAt) return true;
      host.setLevel(1, "emergency");
      this.level = 1;
      this.#healthy = 0;
      // Every new entry is looked at during the episode (only SYN creates TCP state).
      host.setWatch(0);
      this.#reap(host);
    }
    if (p.proto === IPPROTO.TCP && (p.tcpFlags & SYN_MASK) !== TCP_FLAG.SYN) {
      host.refuse(REFUSE_REASON.NOT_SYN);
      return false;
    }
    if (host.count < host.capacity) return true;
    this.#reap(host);
    if (host.count < host.capacity) return true;
    if (host.kernelEarlyDrop(t.hash)) return true;
    host.kernelTableFull();
    return false;
  }

  #reap(host: PolicyHost): void {
    this.#host = host;
    reapIdle(host, EVICT_REASON.EMERGENCY_TIMEOUT, this.#floorJ, this.#limit);
  }

  gc(): void {}

  tick(host: PolicyHost): void {
    if (this.level === 0) return;
    this.#reap(host);
    if (host.count < this.#healthyBelow) this.#healthy++;
    else this.#healthy = 0;
    if (this.#healthy >= this.#checks) {
      host.setLevel(0, "normal");
      this.level = 0;
      host.setWatch(this.#enterAt);
    }
  }
}
