/**
 * Packet sources: bytes of a capture in, decoded (and reassembled) packets out.
 *
 *   bytes ─► CaptureParser ─► decodeFrame ─► Defragmenter ─► handler(view)
 *
 * One PacketView is reused for every packet; the handler must copy whatever
 * it keeps. Every record reaches the handler except fragments the
 * defragmenter holds or drops (when defragmentation is on, which is the
 * default because conntrack always sits behind nf_defrag). Packets that
 * failed to decode are delivered too, with `view.reason` set: codes below
 * FIRST_L4_REASON never reach conntrack in the kernel (not IP, or dropped by
 * the IP layer), higher codes are packets conntrack sees but cannot use.
 *
 * A corrupt or truncated capture ends the stream: everything before the
 * fault has been delivered, and the summary carries the CaptureError.
 *
 * Entry points:
 * - `forEachPacket(input, handler, opts)`: async; input is a path, "-" for
 *   stdin, a readable stream, an async iterable of chunks, or bytes; gzip
 *   compression is undone on the fly.
 * - `forEachPacketSync(input, handler, opts)`: a path (read with one reused
 *   1 MiB buffer) or bytes; the fastest way through a file (not compressed).
 * - `PacketSource`: the push interface underneath, for callers that have
 *   their own chunks.
 */
import { closeSync, createReadStream, openSync, readSync } from "node:fs";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { CaptureParser } from "./capture.js";
import { decodeFrame, decodeReasonName, DECODE_FLAG, DECODE_REASON } from "./decode.js";
import { DEFRAG, Defragmenter } from "./defrag.js";
import type { DefragOptions, DefragSummary } from "./defrag.js";
import { CaptureError } from "./errors.js";
import { PacketView } from "./view.js";

/** Called for every packet; the view is reused and valid only during the call. */
export type PacketHandler = (view: PacketView) => void;

/** Options of the packet sources. */
export interface SourceOptions {
  /** Reassemble fragments (nf_defrag) before handing packets on. Defaults to true. */
  defrag?: boolean | DefragOptions;
  /**
   * The defragmenter's clock in milliseconds for a packet. Defaults to the
   * capture timestamp; `() => 0` freezes it (no fragment queue ever expires),
   * as for a kernel fed a whole capture within milliseconds.
   */
  defragClock?: (view: PacketView) => number;
  /**
   * Refuse IPv4 packets with a wrong header checksum, as ip_rcv() does
   * (decode reason "bad-ipv4-checksum": they never reach conntrack). A
   * checksum field of 0 is the transmit-offload artefact of a capture taken
   * on the sending host and is accepted (counted in `ipv4ChecksumZero`).
   * Defaults to true; the kernel has no switch to turn this off, false is for
   * callers that rewrite IPv4 headers anyway.
   */
  verifyIpv4Checksum?: boolean;
  /** Name of the input in errors. Defaults to the path, or "-". */
  name?: string;
  /** Stop after this many records. */
  maxRecords?: number;
  /** The view to fill. Defaults to a new one (see `PacketSource.view`). */
  view?: PacketView;
}

/** What a source saw. */
export interface SourceSummary {
  /** Capture format, once sniffed. */
  format: "pcap" | "pcapng" | null;
  /** Records read from the capture. */
  records: number;
  /** Bytes of input consumed by whole records and headers. */
  bytes: number;
  /** Packets handed to the handler (records minus fragments held or dropped, plus nothing else). */
  delivered: number;
  /** Records whose captured length is below their length on the wire. */
  snapped: number;
  /** Packets delivered by family. */
  ipv4: number;
  ipv6: number;
  /** Delivered packets with a decode problem, by reason name. */
  decodeFailures: Record<string, number>;
  /** IPv4 packets dropped for a wrong header checksum (also in decodeFailures as "bad-ipv4-checksum"). */
  ipv4ChecksumBad: number;
  /** IPv4 packets (fragments counted one by one) accepted with a zero, offloaded header checksum. */
  ipv4ChecksumZero: number;
  /** Link types of the records read (not of interfaces that carried none). */
  linkTypes: number[];
  /** Timestamp of the first and last record, or null when there were none. */
  firstTs: { sec: number; nsec: number } | null;
  lastTs: { sec: number; nsec: number } | null;
  /** Defragmenter counters, or null when defragmentation was off. */
  fragments: DefragSummary | null;
  /** The capture fault that ended the stream, if any. */
  error: CaptureError | null;
}

const READ_CHUNK = 1 << 20;

/** Push interface: feed chunks, then `end()`. Never throws CaptureError; see `summary().error`. */
export class PacketSource {
  /** The one view every packet is decoded into. */
  readonly view: PacketView;
  readonly #parser: CaptureParser;
  readonly #defrag: Defragmenter | null;
  readonly #defragClock: ((view: PacketView) => number) | null;
  readonly #handler: PacketHandler;
  readonly #flags: number;
  readonly #maxRecords: number;
  readonly #reasons = new Float64Array(64);
  /** Link types of delivered records: one flag per LINKTYPE value. */
  readonly #linkSeen = new Uint8Array(65536);
  #delivered = 0;
  #snapped = 0;
  #csumZero = 0;
  #ipv4 = 0;
  #ipv6 = 0;
  #firstSec = -1;
  #firstNsec = 0;
  #lastSec = -1;
  #lastNsec = 0;
  #error: CaptureError | null = null;
  #stopped = false;

  constructor(handler: PacketHandler, opts: SourceOptions = {}) {
    this.view = opts.view ?? new PacketView();
    this.#handler = handler;
    this.#flags = opts.verifyIpv4Checksum === false ? DECODE_FLAG.NO_IPV4_CHECKSUM : DECODE_FLAG.VERIFY_IPV4_CHECKSUM;
    this.#maxRecords = opts.maxRecords ?? Infinity;
    const d = opts.defrag ?? true;
    this.#defrag = d === false ? null : new Defragmenter(d === true ? {} : d);
    this.#defragClock = opts.defragClock ?? null;
    this.#parser = new CaptureParser(this.#onRecord, { name: opts.name ?? "-", view: this.view });
  }

  /** False once the stream has ended (fault or record limit): further input is ignored. */
  get active(): boolean {
    return this.#error === null && !this.#stopped;
  }

  /** Parses a chunk and delivers its packets. */
  push(chunk: Uint8Array): void {
    if (!this.active) return;
    try {
      this.#parser.push(chunk);
    } catch (e) {
      if (e === STOP) return;
      if (!(e instanceof CaptureError)) throw e;
      this.#error = e;
    }
  }

  /** Declares the end of input and returns the summary. */
  end(): SourceSummary {
    if (this.active) {
      try {
        this.#parser.end();
      } catch (e) {
        if (!(e instanceof CaptureError)) throw e;
        this.#error = e;
      }
    }
    return this.summary();
  }

  /** Records a fault that happened outside the parser (e.g. a read error). */
  fail(e: CaptureError): void {
    if (this.#error === null) this.#error = e;
  }

  /** Counters so far. */
  summary(): SourceSummary {
    const failures: Record<string, number> = {};
    const r = this.#reasons;
    for (let i = 1; i < r.length; i++) if ((r[i] as number) > 0) failures[decodeReasonName(i)] = r[i] as number;
    return {
      format: this.#parser.format,
      records: Math.min(this.#parser.records, this.#maxRecords),
      bytes: this.#parser.offset,
      delivered: this.#delivered,
      snapped: this.#snapped,
      ipv4: this.#ipv4,
      ipv6: this.#ipv6,
      decodeFailures: failures,
      ipv4ChecksumBad: r[DECODE_REASON.BAD_IPV4_CHECKSUM] as number,
      ipv4ChecksumZero: this.#csumZero,
      linkTypes: seenList(this.#linkSeen),
      firstTs: this.#firstSec < 0 ? null : { sec: this.#firstSec, nsec: this.#firstNsec },
      lastTs: this.#lastSec < 0 ? null : { sec: this.#lastSec, nsec: this.#lastNsec },
      fragments: this.#defrag === null ? null : this.#defrag.summary(),
      error: this.#error,
    };
  }

  // An arrow field: created once, so the parser calls one stable function per record.
  readonly #onRecord = (view: PacketView): void => {
    if (view.index > this.#maxRecords) {
      this.#stopped = true;
      throw STOP;
    }
    if (this.#firstSec < 0) {
      this.#firstSec = view.tsSec;
      this.#firstNsec = view.tsNsec;
    }
    this.#lastSec = view.tsSec;
    this.#lastNsec = view.tsNsec;
    if (view.capLen < view.wireLen) this.#snapped++;
    this.#linkSeen[view.linkType & 0xffff] = 1;
    decodeFrame(view, this.#flags);
    if (view.ipv4ChecksumZero) this.#csumZero++;
    const defrag = this.#defrag;
    if (defrag !== null && view.family !== 0) {
      const clock = this.#defragClock;
      const v = defrag.offer(view, clock === null ? view.tsSec * 1000 + view.tsNsec / 1e6 : clock(view));
      if (v === DEFRAG.STOLEN) return;
    }
    this.#delivered++;
    const reason = view.reason;
    if (reason !== 0) {
      const r = this.#reasons;
      r[reason & 63] = (r[reason & 63] as number) + 1;
    }
    if (view.family === 4) this.#ipv4++;
    else if (view.family === 6) this.#ipv6++;
    this.#handler(view);
  };
}

function seenList(flags: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < flags.length; i++) if (flags[i] !== 0) out.push(i);
  return out;
}

/** Thrown through the parser to stop at the record limit; never escapes. */
const STOP = new Error("Record limit reached");

/**
 * Streams a capture through decode (and defragmentation) into `handler`.
 * Resolves with the summary; a corrupt capture is reported in
 * `summary.error` after every packet before the fault was delivered.
 * Gzip-compressed input (a .pcap.gz, or compressed bytes on stdin) is
 * decompressed on the fly; byte offsets in errors then count decompressed
 * bytes. Errors thrown by the handler propagate.
 */
export async function forEachPacket(
  input: string | NodeJS.ReadableStream | AsyncIterable<Uint8Array> | Uint8Array,
  handler: PacketHandler,
  opts: SourceOptions = {},
): Promise<SourceSummary> {
  if (input instanceof Uint8Array) {
    if (!isGzip(input)) return forEachPacketSync(input, handler, opts);
    return streamThrough(Readable.from([input]), handler, opts, opts.name ?? "-");
  }
  if (typeof input === "string" && input !== "-") {
    if (!fileIsGzip(input)) return forEachPacketSync(input, handler, opts);
    return streamThrough(createReadStream(input), handler, opts, opts.name ?? input);
  }
  return streamThrough(input === "-" ? process.stdin : input, handler, opts, opts.name ?? "-");
}

function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

function fileIsGzip(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    // Let the synchronous reader report the failure.
    return false;
  }
  try {
    const head = new Uint8Array(2);
    return readSync(fd, head, 0, 2, 0) === 2 && isGzip(head);
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Feeds a stream to a PacketSource, gunzipping it when its first bytes say so. */
async function streamThrough(
  stream: NodeJS.ReadableStream | AsyncIterable<Uint8Array>,
  handler: PacketHandler,
  opts: SourceOptions,
  name: string,
): Promise<SourceSummary> {
  const src = new PacketSource(handler, { ...opts, name });
  try {
    const it = (stream as AsyncIterable<Uint8Array | string>)[Symbol.asyncIterator]();
    // The gzip magic is two bytes: gather at least that much before deciding.
    let head: Uint8Array = new Uint8Array(0);
    while (head.length < 2) {
      const r = await it.next();
      if (r.done === true) break;
      const b = toBytes(r.value);
      head = head.length === 0 ? b : Buffer.concat([head, b]);
    }
    if (head.length === 0) return src.end();
    let chunks: AsyncIterable<Uint8Array | string>;
    if (isGzip(head)) {
      async function* rest(): AsyncGenerator<Uint8Array> {
        yield head;
        for (;;) {
          const r = await it.next();
          if (r.done === true) return;
          yield toBytes(r.value);
        }
      }
      chunks = Readable.from(rest()).pipe(createGunzip());
    } else {
      src.push(head);
      chunks = { [Symbol.asyncIterator]: () => it };
    }
    for await (const chunk of chunks) {
      if (!src.active) break;
      src.push(toBytes(chunk));
    }
  } catch (e) {
    if (e instanceof CaptureError) throw e;
    const err = e as NodeJS.ErrnoException;
    src.fail(new CaptureError(name, src.summary().bytes, "io-error", `Cannot read "${name}": ${err.message}`, { cause: e }));
  }
  return src.end();
}

function toBytes(chunk: Uint8Array | string): Uint8Array {
  return typeof chunk === "string" ? Buffer.from(chunk, "latin1") : chunk;
}

/**
 * Synchronous variant for files and in-memory captures. A file is read in
 * 1 MiB steps into one reused buffer, never loaded whole.
 */
export function forEachPacketSync(input: string | Uint8Array, handler: PacketHandler, opts: SourceOptions = {}): SourceSummary {
  if (input instanceof Uint8Array) {
    const src = new PacketSource(handler, { ...opts, name: opts.name ?? "-" });
    src.push(input);
    return src.end();
  }
  const name = opts.name ?? input;
  const src = new PacketSource(handler, { ...opts, name });
  let fd: number;
  try {
    fd = openSync(input, "r");
  } catch (e) {
    src.fail(new CaptureError(name, 0, "io-error", `Cannot open "${name}": ${(e as Error).message}`, { cause: e }));
    return src.summary();
  }
  const buf = new Uint8Array(READ_CHUNK);
  let pos = 0;
  try {
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        src.fail(new CaptureError(name, pos, "io-error", `Cannot read "${name}" at byte ${pos}: ${(e as Error).message}`, { cause: e }));
        return src.summary();
      }
      if (n === 0) break;
      pos += n;
      src.push(n === buf.length ? buf : buf.subarray(0, n));
      if (!src.active) break;
    }
  } finally {
    closeSync(fd);
  }
  return src.end();
}
