/**
 * What the reader counts of every frame before conntrack sees it: records,
 * bytes, progress calls, timestamps that go backwards, frames that are not IP
 * (and the unsupported link types among them). One class for the single- and
 * the multi-threaded replay, so both summaries count the same way.
 */
import { DECODE_REASON, FIRST_L4_REASON } from "../packet/decode.js";
import type { PacketView } from "../packet/view.js";

export class ReaderCounts {
  /** Records read. */
  total = 0;
  /** Captured bytes of those records. */
  bytes = 0;
  /** Records that never reach conntrack: not IP, or refused by the IP layer. */
  nonIp = 0;
  /** Records stamped earlier than the record before. */
  backwards = 0;
  /** Records skipped by link type. */
  readonly unsupportedLinks = new Map<number, number>();
  private lastSec = -1;
  private lastNsec = 0;

  constructor(
    private readonly progress: ((records: number, bytes: number) => void) | null,
    private readonly every: number,
  ) {}

  /** Counts one record; false when it never reaches conntrack. */
  admit(view: PacketView): boolean {
    const total = ++this.total;
    this.bytes += view.capLen;
    if (this.progress !== null && total % this.every === 0) this.progress(total, this.bytes);
    const sec = view.tsSec;
    if (sec < this.lastSec || (sec === this.lastSec && view.tsNsec < this.lastNsec)) this.backwards++;
    this.lastSec = sec;
    this.lastNsec = view.tsNsec;
    if (view.family === 0 || (view.reason !== 0 && view.reason < FIRST_L4_REASON)) {
      this.nonIp++;
      if (view.reason === DECODE_REASON.UNSUPPORTED_LINK_TYPE) this.unsupportedLinks.set(view.linkType, (this.unsupportedLinks.get(view.linkType) ?? 0) + 1);
      return false;
    }
    return true;
  }
}
