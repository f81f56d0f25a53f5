/**
 * Push parser for capture files: classic pcap (µs / ns / Kuznetzov magic,
 * either byte order) and pcapng (any number of sections of either byte
 * order, per-interface link type, snaplen, `if_tsresol` and `if_tsoffset`;
 * EPB, SPB and the obsolete PB; other blocks skipped).
 *
 * Feed it chunks of any size with `push()`, then call `end()`. Records are
 * framed by offsets inside the chunk they arrived in; only a record that
 * straddles two chunks is copied, into a reused tail buffer. For every record
 * the sink receives the same PacketView with its capture fields filled in
 * (`data`/`frameOff`/`capLen` locate the frame) — valid only during the call.
 *
 * The format is sniffed from the magic, never from the file name.
 */
import { CaptureError } from "./errors.js";
import { PacketView } from "./view.js";

/** Receives every packet record, in file order. */
export type RecordSink = (view: PacketView) => void;

/** Options of {@link CaptureParser}. */
export interface CaptureParserOptions {
  /** Name used in errors (a path, or "-" for stdin). Defaults to "-". */
  name?: string;
  /** The view to fill. Defaults to a new one. */
  view?: PacketView;
}

const enum St {
  Magic,
  PcapHeader,
  PcapRecord,
  Pcapng,
}

const EMPTY = new Uint8Array(0);
const EMPTY_DV = new DataView(EMPTY.buffer);

/** libpcap's largest snapshot for ordinary link types (MAXIMUM_SNAPLEN). */
const PCAP_MAX_SNAPLEN = 262144;
/** Above this a record or block length is taken as corruption rather than awaited. */
const HARD_LIMIT = 64 * 1024 * 1024;

const TS_DECIMAL = 0;
const TS_BINARY = 1;
const TS_BIGINT = 2;

/** Streaming pcap / pcapng parser. */
export class CaptureParser {
  readonly #sink: RecordSink;
  readonly #view: PacketView;
  readonly #name: string;

  #state = St.Magic;
  /** Bytes needed from the current parse position before progress is possible. */
  #need = 4;
  /** Absolute input offset of the current parse position. */
  #abs = 0;
  #le = true;
  #failed: CaptureError | null = null;

  // pcap
  #nano = false;
  #recHdr = 16;
  #linkType = 0;
  #maxCap = PCAP_MAX_SNAPLEN;

  // pcapng: per-interface state of the current section
  #sawSection = false;
  #ifLink: number[] = [];
  #ifSnap: number[] = [];
  #ifTsKind: number[] = [];
  /** Decimal: 10^n (n ≤ 9); binary: n (≤ 32); bigint: units per second. */
  #ifTsArg: number[] = [];
  #ifTsOffset: number[] = [];

  // the unparsed tail of earlier chunks
  #tail = new Uint8Array(0);
  #tailDv = EMPTY_DV;
  #tailLen = 0;

  /** "pcap" or "pcapng" once sniffed. */
  format: "pcap" | "pcapng" | null = null;
  /** Packet records delivered. */
  records = 0;
  /** Link types of the pcap file / of every pcapng interface described so far. */
  readonly linkTypes = new Set<number>();
  /** pcap: the nanosecond magic; pcapng: false. */
  get nanosecond(): boolean {
    return this.#nano;
  }

  constructor(sink: RecordSink, opts: CaptureParserOptions = {}) {
    this.#sink = sink;
    this.#view = opts.view ?? new PacketView();
    this.#name = opts.name ?? "-";
  }

  /** Absolute offset of the first byte not yet parsed (a partial record is not parsed). */
  get offset(): number {
    return this.#abs;
  }

  /** Bytes of the input pushed so far. */
  get bytesIn(): number {
    return this.#abs + this.#tailLen;
  }

  /**
   * Parses a chunk, delivering every complete record in it.
   *
   * @throws {CaptureError} on a corrupt capture, after delivering all records before the fault
   */
  push(chunk: Uint8Array): void {
    if (this.#failed !== null) throw this.#failed;
    try {
      this.#push(chunk);
    } catch (e) {
      if (e instanceof CaptureError) this.#failed = e;
      throw e;
    } finally {
      this.#view.data = EMPTY;
    }
  }

  #push(chunk: Uint8Array): void {
    let pos = 0;
    const end = chunk.length;
    while (this.#tailLen > 0) {
      const need = this.#need;
      if (this.#tailLen < need) {
        const take = Math.min(need - this.#tailLen, end - pos);
        this.#appendTail(chunk, pos, take);
        pos += take;
        if (this.#tailLen < need) return;
      }
      const used = this.#parse(this.#tail, this.#tailDv, 0, this.#tailLen);
      if (used === this.#tailLen) this.#tailLen = 0;
      else if (used > 0) {
        this.#tail.copyWithin(0, used, this.#tailLen);
        this.#tailLen -= used;
      }
    }
    if (pos === end) return;
    const dv = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const stop = this.#parse(chunk, dv, pos, end);
    if (stop < end) this.#appendTail(chunk, stop, end - stop);
  }

  /**
   * Declares the end of input.
   *
   * @throws {CaptureError} when the input ends inside a header or record
   */
  end(): void {
    if (this.#failed !== null) throw this.#failed;
    const have = this.#tailLen;
    if (this.#state === St.Magic || this.#state === St.PcapHeader || (this.#state === St.Pcapng && !this.#sawSection)) {
      const need = this.#state === St.Magic ? 24 : this.#need;
      throw this.#fail(
        this.#abs,
        "truncated-file-header",
        `Truncated capture file header in "${this.#name}" at byte ${this.#abs}: need ${need} bytes, have ${have}`,
      );
    }
    if (have > 0) {
      const what = this.#state === St.PcapRecord ? "pcap record" : "pcapng block";
      throw this.#fail(this.#abs, "truncated-record", `Truncated ${what} in "${this.#name}" at byte ${this.#abs}: need ${this.#need} bytes, have ${have}`);
    }
  }

  /** Forgets all state so that the parser can read a new input. */
  reset(): void {
    this.#state = St.Magic;
    this.#need = 4;
    this.#abs = 0;
    this.#le = true;
    this.#failed = null;
    this.#nano = false;
    this.#recHdr = 16;
    this.#linkType = 0;
    this.#sawSection = false;
    this.#resetInterfaces();
    this.#tailLen = 0;
    this.format = null;
    this.records = 0;
    this.linkTypes.clear();
  }

  #fail(at: number, reason: ConstructorParameters<typeof CaptureError>[2], message: string): CaptureError {
    const e = new CaptureError(this.#name, at, reason, message);
    this.#failed = e;
    return e;
  }

  #appendTail(src: Uint8Array, from: number, n: number): void {
    if (n <= 0) return;
    const want = this.#tailLen + n;
    if (want > this.#tail.length) {
      const grown = new Uint8Array(Math.max(want, this.#tail.length * 2, 65536));
      grown.set(this.#tail.subarray(0, this.#tailLen));
      this.#tail = grown;
      this.#tailDv = new DataView(grown.buffer);
    }
    this.#tail.set(src.subarray(from, from + n), this.#tailLen);
    this.#tailLen = want;
  }

  #resetInterfaces(): void {
    this.#ifLink = [];
    this.#ifSnap = [];
    this.#ifTsKind = [];
    this.#ifTsArg = [];
    this.#ifTsOffset = [];
  }

  /** Parses whole units in buf[pos, end); returns where it stopped and sets #need. */
  #parse(buf: Uint8Array, dv: DataView, start: number, end: number): number {
    let pos = start;
    for (;;) {
      const avail = end - pos;
      switch (this.#state) {
        case St.Magic: {
          if (avail < 4) {
            this.#need = 4;
            return pos;
          }
          this.#sniff(dv, pos);
          continue;
        }
        case St.PcapHeader: {
          if (avail < 24) {
            this.#need = 24;
            return pos;
          }
          this.#pcapHeader(dv, pos);
          pos += 24;
          this.#abs += 24;
          this.#state = St.PcapRecord;
          continue;
        }
        case St.PcapRecord:
          return this.#pcapRecords(buf, dv, pos, end);
        case St.Pcapng:
          return this.#pcapngBlocks(buf, dv, pos, end);
      }
    }
  }

  #sniff(dv: DataView, pos: number): void {
    const m = dv.getUint32(pos, false);
    switch (m) {
      case 0xa1b2c3d4:
      case 0xa1b23c4d:
      case 0xa1b2cd34:
        this.#le = false;
        break;
      case 0xd4c3b2a1:
      case 0x4d3cb2a1:
      case 0x34cdb2a1:
        this.#le = true;
        break;
      case 0x0a0d0d0a:
        this.format = "pcapng";
        this.#state = St.Pcapng;
        this.#need = 12;
        return;
      default: {
        const hint = m >>> 16 === 0x1f8b ? " (gzip-compressed: decompress it first)" : "";
        throw this.#fail(
          this.#abs,
          "unknown-format",
          `Unknown capture format in "${this.#name}" at byte ${this.#abs}: magic 0x${m.toString(16).padStart(8, "0")}${hint}`,
        );
      }
    }
    const canon = this.#le ? dv.getUint32(pos, true) : m;
    this.#nano = canon === 0xa1b23c4d;
    this.#recHdr = canon === 0xa1b2cd34 ? 24 : 16;
    this.format = "pcap";
    this.#state = St.PcapHeader;
    this.#need = 24;
  }

  #pcapHeader(dv: DataView, pos: number): void {
    const le = this.#le;
    const snaplen = dv.getUint32(pos + 16, le);
    // The upper bits of the link-type field carry FCS information (LT_FCS_*).
    this.#linkType = dv.getUint32(pos + 20, le) & 0xffff;
    this.#maxCap = Math.min(Math.max(snaplen, PCAP_MAX_SNAPLEN), HARD_LIMIT);
    this.linkTypes.add(this.#linkType);
  }

  #pcapRecords(buf: Uint8Array, dv: DataView, start: number, end: number): number {
    const le = this.#le;
    const hdr = this.#recHdr;
    const nano = this.#nano;
    const view = this.#view;
    const sink = this.#sink;
    const linkType = this.#linkType;
    const maxCap = this.#maxCap;
    let pos = start;
    while (end - pos >= hdr) {
      const capLen = dv.getUint32(pos + 8, le);
      if (capLen > maxCap) {
        throw this.#fail(
          this.#abs,
          "bad-record-length",
          `Bad pcap record length in "${this.#name}" at byte ${this.#abs}: captured length ${capLen} exceeds ${maxCap}`,
        );
      }
      const total = hdr + capLen;
      if (end - pos < total) {
        this.#need = total;
        return pos;
      }
      let sec = dv.getUint32(pos, le);
      let frac = dv.getUint32(pos + 4, le);
      if (!nano) frac *= 1000;
      if (frac >= 1_000_000_000) {
        sec += Math.floor(frac / 1_000_000_000);
        frac %= 1_000_000_000;
      }
      view.index = ++this.records;
      view.fileOffset = this.#abs;
      view.tsSec = sec;
      view.tsNsec = frac;
      view.capLen = capLen;
      view.wireLen = dv.getUint32(pos + 12, le);
      view.linkType = linkType;
      view.interfaceId = 0;
      view.data = buf;
      view.frameOff = pos + hdr;
      pos += total;
      this.#abs += total;
      sink(view);
    }
    this.#need = hdr;
    return pos;
  }

  /** Parses pcapng blocks; returns the stop position. A section header switches the byte order in place. */
  #pcapngBlocks(buf: Uint8Array, dv: DataView, start: number, end: number): number {
    let pos = start;
    for (;;) {
      const avail = end - pos;
      if (avail < 8) {
        this.#need = 8;
        return pos;
      }
      const type = dv.getUint32(pos, this.#le);
      if (type === 0x0a0d0d0a) {
        if (avail < 12) {
          this.#need = 12;
          return pos;
        }
        const bom = dv.getUint32(pos + 8, true);
        let le: boolean;
        if (bom === 0x1a2b3c4d) le = true;
        else if (bom === 0x4d3c2b1a) le = false;
        else {
          throw this.#fail(
            this.#abs,
            "bad-section-header",
            `Bad pcapng section header in "${this.#name}" at byte ${this.#abs}: byte-order magic 0x${bom.toString(16).padStart(8, "0")}`,
          );
        }
        const len = dv.getUint32(pos + 4, le);
        this.#checkBlockLength(len, 28);
        if (avail < len) {
          this.#need = len;
          return pos;
        }
        this.#checkTrailer(dv, pos, len, le);
        const major = dv.getUint16(pos + 12, le);
        if (major !== 1) {
          throw this.#fail(
            this.#abs,
            "bad-section-header",
            `Bad pcapng section header in "${this.#name}" at byte ${this.#abs}: version ${major}.${dv.getUint16(pos + 14, le)}`,
          );
        }
        this.#le = le;
        this.#sawSection = true;
        this.#resetInterfaces();
        pos += len;
        this.#abs += len;
        continue;
      }
      const le = this.#le;
      const len = dv.getUint32(pos + 4, le);
      this.#checkBlockLength(len, 12);
      if (avail < len) {
        this.#need = len;
        return pos;
      }
      this.#checkTrailer(dv, pos, len, le);
      switch (type) {
        case 6:
          this.#packetBlock(buf, dv, pos, len, dv.getUint32(pos + 8, le), 12, 28);
          break;
        case 2:
          // Obsolete Packet Block: 16-bit interface id and drop count.
          this.#packetBlock(buf, dv, pos, len, dv.getUint16(pos + 8, le), 12, 28);
          break;
        case 3:
          this.#simplePacket(buf, dv, pos, len);
          break;
        case 1:
          this.#interface(dv, pos, len);
          break;
        default:
          break;
      }
      pos += len;
      this.#abs += len;
    }
  }

  #checkBlockLength(len: number, min: number): void {
    if (len < min || (len & 3) !== 0 || len > HARD_LIMIT) {
      throw this.#fail(this.#abs, "bad-block-length", `Bad pcapng block length in "${this.#name}" at byte ${this.#abs}: ${len} bytes`);
    }
  }

  #checkTrailer(dv: DataView, pos: number, len: number, le: boolean): void {
    const trail = dv.getUint32(pos + len - 4, le);
    if (trail !== len) {
      throw this.#fail(
        this.#abs,
        "bad-block-length",
        `Bad pcapng block length in "${this.#name}" at byte ${this.#abs}: ${len} bytes at the start, ${trail} at the end`,
      );
    }
  }

  #interface(dv: DataView, pos: number, len: number): void {
    const le = this.#le;
    if (len < 20) {
      throw this.#fail(this.#abs, "bad-block", `Bad pcapng interface block in "${this.#name}" at byte ${this.#abs}: ${len} bytes`);
    }
    const link = dv.getUint16(pos + 8, le);
    const snap = dv.getUint32(pos + 12, le);
    let tsresol = 6;
    let tsoffset = 0;
    // Options: code, length, value padded to 4. A malformed list ends the options, not the file.
    let o = pos + 16;
    const stop = pos + len - 4;
    while (o + 4 <= stop) {
      const code = dv.getUint16(o, le);
      const olen = dv.getUint16(o + 2, le);
      if (code === 0 || o + 4 + olen > stop) break;
      if (code === 9 && olen >= 1) tsresol = dv.getUint8(o + 4);
      else if (code === 14 && olen >= 8) {
        const hi = dv.getInt32(o + 4 + (le ? 4 : 0), le);
        const lo = dv.getUint32(o + 4 + (le ? 0 : 4), le);
        tsoffset = hi * 4294967296 + lo;
      }
      o += 4 + ((olen + 3) & ~3);
    }
    this.#ifLink.push(link);
    this.#ifSnap.push(snap);
    this.#ifTsOffset.push(tsoffset);
    const exp = tsresol & 0x7f;
    if ((tsresol & 0x80) === 0 && exp <= 9) {
      this.#ifTsKind.push(TS_DECIMAL);
      this.#ifTsArg.push(10 ** exp);
    } else if ((tsresol & 0x80) !== 0 && exp <= 32) {
      this.#ifTsKind.push(TS_BINARY);
      this.#ifTsArg.push(exp);
    } else {
      this.#ifTsKind.push(TS_BIGINT);
      this.#ifTsArg.push(tsresol);
    }
    this.linkTypes.add(link);
  }

  #packetBlock(buf: Uint8Array, dv: DataView, pos: number, len: number, ifId: number, tsOff: number, dataOff: number): void {
    const le = this.#le;
    if (len < dataOff + 4) {
      throw this.#fail(this.#abs, "bad-block", `Bad pcapng packet block in "${this.#name}" at byte ${this.#abs}: ${len} bytes`);
    }
    if (ifId >= this.#ifLink.length) {
      throw this.#fail(
        this.#abs,
        "unknown-interface",
        `Unknown pcapng interface in "${this.#name}" at byte ${this.#abs}: id ${ifId}, ${this.#ifLink.length} described`,
      );
    }
    const capLen = dv.getUint32(pos + dataOff - 8, le);
    if (capLen > len - dataOff - 4) {
      throw this.#fail(this.#abs, "bad-block", `Bad pcapng packet block in "${this.#name}" at byte ${this.#abs}: captured length ${capLen} exceeds the block`);
    }
    const view = this.#view;
    this.#timestamp(ifId, dv.getUint32(pos + tsOff, le), dv.getUint32(pos + tsOff + 4, le));
    view.index = ++this.records;
    view.fileOffset = this.#abs;
    view.capLen = capLen;
    view.wireLen = dv.getUint32(pos + dataOff - 4, le);
    view.linkType = this.#ifLink[ifId] as number;
    view.interfaceId = ifId;
    view.data = buf;
    view.frameOff = pos + dataOff;
    this.#sink(view);
  }

  #simplePacket(buf: Uint8Array, dv: DataView, pos: number, len: number): void {
    if (this.#ifLink.length === 0) {
      throw this.#fail(
        this.#abs,
        "unknown-interface",
        `Unknown pcapng interface in "${this.#name}" at byte ${this.#abs}: simple packet block before any interface`,
      );
    }
    if (len < 16) {
      throw this.#fail(this.#abs, "bad-block", `Bad pcapng packet block in "${this.#name}" at byte ${this.#abs}: ${len} bytes`);
    }
    const wire = dv.getUint32(pos + 8, this.#le);
    const snap = this.#ifSnap[0] as number;
    let cap = Math.min(wire, len - 16);
    if (snap > 0 && cap > snap) cap = snap;
    const view = this.#view;
    view.index = ++this.records;
    view.fileOffset = this.#abs;
    view.tsSec = 0;
    view.tsNsec = 0;
    view.capLen = cap;
    view.wireLen = wire;
    view.linkType = this.#ifLink[0] as number;
    view.interfaceId = 0;
    view.data = buf;
    view.frameOff = pos + 12;
    this.#sink(view);
  }

  /** Converts a 64-bit timestamp in interface units into view.tsSec / tsNsec exactly. */
  #timestamp(ifId: number, hi: number, lo: number): void {
    const view = this.#view;
    const kind = this.#ifTsKind[ifId] as number;
    const arg = this.#ifTsArg[ifId] as number;
    const offset = this.#ifTsOffset[ifId] as number;
    if (kind === TS_DECIMAL) {
      // Long division of hi:lo by arg (≤ 10^9 < 2^30) in 16-bit digits keeps every step below 2^53.
      const qHi = Math.floor(hi / arg);
      const rHi = hi - qHi * arg;
      const x = rHi * 65536 + (lo >>> 16);
      const q1 = Math.floor(x / arg);
      const y = (x - q1 * arg) * 65536 + (lo & 0xffff);
      const q2 = Math.floor(y / arg);
      const r = y - q2 * arg;
      view.tsSec = qHi * 4294967296 + q1 * 65536 + q2 + offset;
      view.tsNsec = r * (1_000_000_000 / arg);
      return;
    }
    if (kind === TS_BINARY) {
      const n = arg;
      let sec: number;
      let frac: number;
      if (n === 0) {
        sec = hi * 4294967296 + lo;
        frac = 0;
      } else if (n === 32) {
        sec = hi;
        frac = lo;
      } else {
        sec = hi * 2 ** (32 - n) + (lo >>> n);
        frac = lo % 2 ** n;
      }
      // 10^9 = 2^9 · 1953125, and frac · 1953125 < 2^53 for n ≤ 32.
      view.tsSec = sec + offset;
      view.tsNsec = n >= 9 ? Math.floor((frac * 1953125) / 2 ** (n - 9)) : Math.floor((frac * 1_000_000_000) / 2 ** n);
      return;
    }
    const tsresol = arg;
    const exp = BigInt(tsresol & 0x7f);
    const perSec = (tsresol & 0x80) === 0 ? 10n ** exp : 1n << exp;
    const units = (BigInt(hi) << 32n) | BigInt(lo);
    view.tsSec = Number(units / perSec) + offset;
    view.tsNsec = Number(((units % perSec) * 1_000_000_000n) / perSec);
  }
}
