/**
 * Capture writers: classic pcap and pcapng.
 *
 * Both buffer records in one reused block and hand it on when full, to a file
 * (synchronous writes, so a crash loses at most one buffer) or to a callback.
 * Nothing here is on the tracker's hot path, but `--write-pcap` of a long
 * simulation writes millions of records, so a record costs no allocation.
 *
 * Timestamps are always given as (seconds, nanoseconds); the writer converts
 * them to the file's resolution by truncation, as libpcap does.
 */
import { closeSync, openSync, writeSync } from "node:fs";

/** Where a writer's bytes go: a file path (created or truncated) or a callback. */
export type CaptureOutput = string | ((chunk: Uint8Array) => void);

/** Options of {@link PcapWriter}. */
export interface PcapWriterOptions {
  /** LINKTYPE_* of every record. Defaults to 1 (Ethernet). */
  linkType?: number;
  /** Write the nanosecond magic (0xa1b23c4d) and nanosecond timestamps. Defaults to false (microseconds). */
  nanosecond?: boolean;
  /** Snapshot length: longer frames are cut to it (their original length is kept). Defaults to 262144. */
  snaplen?: number;
  /** Byte order of the file. Defaults to "le". */
  byteOrder?: "le" | "be";
  /** Size of the write buffer in bytes. Defaults to 1 MiB. */
  bufferSize?: number;
}

const DEFAULT_SNAPLEN = 262144;
const DEFAULT_BUFFER = 1 << 20;

/**
 * A byte sink with a reused buffer. Chunks handed to a callback are fresh
 * copies, so the callback may keep them.
 */
class Sink {
  #fd = -1;
  readonly #cb: ((chunk: Uint8Array) => void) | null = null;
  buf: Uint8Array;
  dv: DataView;
  len = 0;
  closed = false;

  constructor(out: CaptureOutput, size: number) {
    if (typeof out === "string") this.#fd = openSync(out, "w");
    else this.#cb = out;
    this.buf = new Uint8Array(size);
    this.dv = new DataView(this.buf.buffer);
  }

  /** Makes room for `n` more bytes, flushing or growing as needed. */
  reserve(n: number): void {
    if (this.closed) throw new Error("Capture writer is closed");
    if (this.len + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) {
      this.buf = new Uint8Array(n);
      this.dv = new DataView(this.buf.buffer);
    }
  }

  flush(): void {
    if (this.len === 0) return;
    if (this.#cb !== null) this.#cb(this.buf.slice(0, this.len));
    else {
      let done = 0;
      while (done < this.len) done += writeSync(this.#fd, this.buf, done, this.len - done);
    }
    this.len = 0;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.#fd >= 0) closeSync(this.#fd);
    this.#fd = -1;
  }
}

/**
 * Writes a classic pcap file (one link type for every record).
 *
 * @example
 * const w = new PcapWriter("/tmp/out.pcap", { nanosecond: true });
 * w.writePacket(1700000000, 5, frame);
 * w.close();
 */
export class PcapWriter {
  readonly #sink: Sink;
  readonly #le: boolean;
  readonly #nano: boolean;
  readonly #snaplen: number;
  /** Records written so far. */
  count = 0;

  constructor(out: CaptureOutput, opts: PcapWriterOptions = {}) {
    const linkType = opts.linkType ?? 1;
    this.#nano = opts.nanosecond ?? false;
    this.#snaplen = opts.snaplen ?? DEFAULT_SNAPLEN;
    this.#le = (opts.byteOrder ?? "le") === "le";
    if (!Number.isInteger(this.#snaplen) || this.#snaplen <= 0) {
      throw new RangeError(`Invalid snaplen "${String(opts.snaplen)}": must be a positive integer`);
    }
    this.#sink = new Sink(out, opts.bufferSize ?? DEFAULT_BUFFER);
    const s = this.#sink;
    s.reserve(24);
    const dv = s.dv;
    const le = this.#le;
    dv.setUint32(0, this.#nano ? 0xa1b23c4d : 0xa1b2c3d4, le);
    dv.setUint16(4, 2, le);
    dv.setUint16(6, 4, le);
    dv.setInt32(8, 0, le);
    dv.setUint32(12, 0, le);
    dv.setUint32(16, this.#snaplen, le);
    dv.setUint32(20, linkType >>> 0, le);
    s.len = 24;
  }

  /**
   * Appends one record. `origLen` is the length on the wire (defaults to the
   * frame's length); frames longer than the snaplen are cut.
   */
  writePacket(tsSec: number, tsNsec: number, frame: Uint8Array, origLen?: number): void {
    const cap = Math.min(frame.length, this.#snaplen);
    const s = this.#sink;
    s.reserve(16 + cap);
    const dv = s.dv;
    const o = s.len;
    const le = this.#le;
    dv.setUint32(o, tsSec >>> 0, le);
    dv.setUint32(o + 4, this.#nano ? tsNsec >>> 0 : Math.floor(tsNsec / 1000), le);
    dv.setUint32(o + 8, cap, le);
    dv.setUint32(o + 12, (origLen ?? frame.length) >>> 0, le);
    s.buf.set(cap === frame.length ? frame : frame.subarray(0, cap), o + 16);
    s.len = o + 16 + cap;
    this.count++;
  }

  /** Writes out anything buffered. */
  flush(): void {
    this.#sink.flush();
  }

  /** Flushes and closes the output. Further writes throw. */
  close(): void {
    this.#sink.close();
  }
}

/** One pcapng interface (an Interface Description Block). */
export interface PcapngInterface {
  /** LINKTYPE_* of the interface. Defaults to 1. */
  linkType?: number;
  /** Snapshot length; 0 means unlimited. Defaults to 0. */
  snaplen?: number;
  /**
   * The raw `if_tsresol` byte: bit 7 clear = 10^-n seconds, set = 2^-n.
   * Defaults to 6 (microseconds; the option is then omitted, as the format's default).
   */
  tsresol?: number;
  /** `if_tsoffset` in seconds, added by readers to every timestamp. Defaults to 0 (omitted). */
  tsoffset?: number;
  /** `if_name`. */
  name?: string;
}

/** Options of {@link PcapngWriter}. */
export interface PcapngWriterOptions {
  /** Interfaces described at the start of the section. Defaults to one Ethernet interface. */
  interfaces?: PcapngInterface[];
  /** Byte order of the section. Defaults to "le". */
  byteOrder?: "le" | "be";
  /** Size of the write buffer in bytes. Defaults to 1 MiB. */
  bufferSize?: number;
}

interface IfState {
  snaplen: number;
  /** Units per second, as a BigInt so that 2^-n and 10^-9 resolutions stay exact. */
  perSec: bigint;
  decimal: boolean;
  exp: number;
  offset: bigint;
}

const utf8 = new TextEncoder();

/**
 * Writes a pcapng file: a Section Header Block, one Interface Description
 * Block per interface, then Enhanced Packet Blocks (or Simple Packet Blocks).
 */
export class PcapngWriter {
  readonly #sink: Sink;
  #le = true;
  #ifs: IfState[] = [];
  /** Packet records written so far. */
  count = 0;

  constructor(out: CaptureOutput, opts: PcapngWriterOptions = {}) {
    this.#sink = new Sink(out, opts.bufferSize ?? DEFAULT_BUFFER);
    this.newSection(opts.byteOrder ?? "le");
    for (const i of opts.interfaces ?? [{ linkType: 1 }]) this.addInterface(i);
  }

  /** Starts a new section (a new SHB); its interfaces must be added again. */
  newSection(byteOrder: "le" | "be" = "le"): void {
    this.#le = byteOrder === "le";
    this.#ifs = [];
    const body = new Uint8Array(16);
    const dv = new DataView(body.buffer);
    dv.setUint32(0, 0x1a2b3c4d, this.#le);
    dv.setUint16(4, 1, this.#le);
    dv.setUint16(6, 0, this.#le);
    dv.setInt32(8, -1, this.#le);
    dv.setInt32(12, -1, this.#le);
    this.writeBlock(0x0a0d0d0a, body);
  }

  /** Adds an interface to the current section and returns its id. */
  addInterface(i: PcapngInterface): number {
    const le = this.#le;
    const opts: Uint8Array[] = [];
    const tsresol = i.tsresol ?? 6;
    if (i.name !== undefined) opts.push(option(2, utf8.encode(i.name), le));
    if (i.tsresol !== undefined) opts.push(option(9, Uint8Array.of(tsresol), le));
    if (i.tsoffset !== undefined && i.tsoffset !== 0) {
      const v = new Uint8Array(8);
      new DataView(v.buffer).setBigInt64(0, BigInt(i.tsoffset), le);
      opts.push(option(14, v, le));
    }
    let optLen = 0;
    for (const o of opts) optLen += o.length;
    if (opts.length > 0) optLen += 4;
    const body = new Uint8Array(8 + optLen);
    const dv = new DataView(body.buffer);
    dv.setUint16(0, i.linkType ?? 1, le);
    dv.setUint32(4, i.snaplen ?? 0, le);
    let p = 8;
    for (const o of opts) {
      body.set(o, p);
      p += o.length;
    }
    // opt_endofopt: code 0, length 0 (already zero).
    this.writeBlock(1, body);
    const decimal = (tsresol & 0x80) === 0;
    const exp = tsresol & 0x7f;
    this.#ifs.push({
      snaplen: i.snaplen ?? 0,
      perSec: decimal ? 10n ** BigInt(exp) : 1n << BigInt(exp),
      decimal,
      exp,
      offset: BigInt(i.tsoffset ?? 0),
    });
    return this.#ifs.length - 1;
  }

  /**
   * Appends an Enhanced Packet Block. The timestamp is converted to the
   * interface's resolution (truncated) after subtracting its `if_tsoffset`.
   */
  writePacket(tsSec: number, tsNsec: number, frame: Uint8Array, origLen?: number, interfaceId = 0): void {
    const itf = this.#ifs[interfaceId];
    if (itf === undefined) throw new RangeError(`Unknown pcapng interface "${interfaceId}"`);
    const cap = itf.snaplen > 0 ? Math.min(frame.length, itf.snaplen) : frame.length;
    const units = (((BigInt(tsSec) - itf.offset) * 1_000_000_000n + BigInt(tsNsec)) * itf.perSec) / 1_000_000_000n;
    if (units < 0n || units >= 1n << 64n) {
      throw new RangeError(`Timestamp ${tsSec}.${String(tsNsec).padStart(9, "0")} does not fit 64 bits at interface ${interfaceId}'s resolution`);
    }
    const pad = (4 - (cap & 3)) & 3;
    const total = 32 + cap + pad;
    const s = this.#sink;
    s.reserve(total);
    const dv = s.dv;
    const o = s.len;
    const le = this.#le;
    dv.setUint32(o, 6, le);
    dv.setUint32(o + 4, total, le);
    dv.setUint32(o + 8, interfaceId, le);
    dv.setUint32(o + 12, Number((units >> 32n) & 0xffffffffn), le);
    dv.setUint32(o + 16, Number(units & 0xffffffffn), le);
    dv.setUint32(o + 20, cap, le);
    dv.setUint32(o + 24, (origLen ?? frame.length) >>> 0, le);
    s.buf.set(cap === frame.length ? frame : frame.subarray(0, cap), o + 28);
    s.buf.fill(0, o + 28 + cap, o + 28 + cap + pad);
    dv.setUint32(o + total - 4, total, le);
    s.len = o + total;
    this.count++;
  }

  /**
   * Appends a Simple Packet Block (no timestamp, interface 0). Readers cut
   * the frame to interface 0's snaplen.
   */
  writeSimplePacket(frame: Uint8Array, origLen?: number): void {
    const body = new Uint8Array(4 + frame.length);
    new DataView(body.buffer).setUint32(0, (origLen ?? frame.length) >>> 0, this.#le);
    body.set(frame, 4);
    this.writeBlock(3, body);
    this.count++;
  }

  /** Appends an arbitrary block (body padded to 4 bytes), e.g. an unknown type for tests. */
  writeBlock(type: number, body: Uint8Array): void {
    const pad = (4 - (body.length & 3)) & 3;
    const total = 12 + body.length + pad;
    const s = this.#sink;
    s.reserve(total);
    const dv = s.dv;
    const o = s.len;
    const le = this.#le;
    dv.setUint32(o, type >>> 0, le);
    dv.setUint32(o + 4, total, le);
    s.buf.set(body, o + 8);
    s.buf.fill(0, o + 8 + body.length, o + 8 + body.length + pad);
    dv.setUint32(o + total - 4, total, le);
    s.len = o + total;
  }

  /** Writes out anything buffered. */
  flush(): void {
    this.#sink.flush();
  }

  /** Flushes and closes the output. Further writes throw. */
  close(): void {
    this.#sink.close();
  }
}

function option(code: number, value: Uint8Array, le: boolean): Uint8Array {
  const pad = (4 - (value.length & 3)) & 3;
  const out = new Uint8Array(4 + value.length + pad);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, code, le);
  dv.setUint16(2, value.length, le);
  out.set(value, 4);
  return out;
}
