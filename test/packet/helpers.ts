/**
 * Shared fixtures for the packet tests: in-memory captures, a parser that
 * collects copies of its records, and a decoder harness that surrounds the
 * frame with junk so that reading past `capLen` shows up.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CaptureParser } from "../../src/packet/capture.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { CaptureError } from "../../src/packet/errors.js";
import { PacketView } from "../../src/packet/view.js";
import { PcapngWriter, PcapWriter } from "../../src/packet/writer.js";
import type { PcapngWriterOptions, PcapWriterOptions } from "../../src/packet/writer.js";

/** A record as the parser described it, with its frame copied out. */
export interface Rec {
  index: number;
  fileOffset: number;
  tsSec: number;
  tsNsec: number;
  capLen: number;
  wireLen: number;
  linkType: number;
  interfaceId: number;
  frame: Uint8Array;
}

export function concatChunks(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** A classic pcap in memory. */
export function pcapBytes(frames: Array<{ sec: number; nsec: number; frame: Uint8Array; orig?: number }>, opts: PcapWriterOptions = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapWriter((c) => chunks.push(c), { bufferSize: 4096, ...opts });
  for (const f of frames) w.writePacket(f.sec, f.nsec, f.frame, f.orig);
  w.close();
  return concatChunks(chunks);
}

/** A pcapng in memory, written by `fill`. */
export function pcapngBytes(fill: (w: PcapngWriter) => void, opts: PcapngWriterOptions = {}): Uint8Array {
  const chunks: Uint8Array[] = [];
  const w = new PcapngWriter((c) => chunks.push(c), { bufferSize: 4096, ...opts });
  fill(w);
  w.close();
  return concatChunks(chunks);
}

export function snapshot(v: PacketView): Rec {
  return {
    index: v.index,
    fileOffset: v.fileOffset,
    tsSec: v.tsSec,
    tsNsec: v.tsNsec,
    capLen: v.capLen,
    wireLen: v.wireLen,
    linkType: v.linkType,
    interfaceId: v.interfaceId,
    frame: v.data.slice(v.frameOff, v.frameOff + v.capLen),
  };
}

/**
 * Parses `bytes` fed in pieces: `split` gives the cut points (absolute
 * offsets, ascending). Returns the records and the CaptureError, if any.
 */
export function parseAll(bytes: Uint8Array, split: number[] = [], name = "test.pcap"): { recs: Rec[]; error: CaptureError | null } {
  const recs: Rec[] = [];
  const p = new CaptureParser((v) => recs.push(snapshot(v)), { name });
  let error: CaptureError | null = null;
  try {
    let at = 0;
    for (const cut of [...split, bytes.length]) {
      p.push(bytes.subarray(at, cut));
      at = cut;
    }
    p.end();
  } catch (e) {
    if (!(e instanceof CaptureError)) throw e;
    error = e;
  }
  return { recs, error };
}

/** Guard bytes around a frame under test: a decoder reading them is reading past the record. */
export const JUNK = 0x5a;

/**
 * Decodes `frame` as a record of `linkType`. The frame sits inside a larger
 * buffer between junk bytes, as it would inside a reader's chunk.
 */
export function decode(frame: Uint8Array, linkType = 1, opts: { wireLen?: number; flags?: number; pad?: number } = {}): PacketView {
  const pad = opts.pad ?? 64;
  const buf = new Uint8Array(frame.length + 2 * pad).fill(JUNK);
  buf.set(frame, pad);
  const v = new PacketView();
  v.data = buf;
  v.frameOff = pad;
  v.capLen = frame.length;
  v.wireLen = opts.wireLen ?? frame.length;
  v.linkType = linkType;
  decodeFrame(v, opts.flags ?? 0);
  return v;
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Repository root (tests run from dist/test/packet). */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The shared corpus of real captures, next to the checkout. */
export const CORPUS_DIR = join(REPO_ROOT, "..", "shared", "corpus", "pcaps");

export interface CorpusEntry {
  file: string;
  packets: number;
  format: string;
}

/** The MANIFEST's table, or null when the corpus is absent. */
export function corpusEntries(): CorpusEntry[] | null {
  const manifest = join(CORPUS_DIR, "MANIFEST.md");
  if (!existsSync(manifest)) return null;
  const out: CorpusEntry[] = [];
  for (const line of readFileSync(manifest, "utf8").split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    // | # | File | Source | Path | License | Size | Format | Packets | Flows | What |
    if (cells.length < 11 || !/^\d+$/.test(cells[1] ?? "")) continue;
    const file = (cells[2] ?? "").replace(/`/g, "");
    const packets = Number((cells[8] ?? "").replace(/,/g, ""));
    out.push({ file, packets, format: (cells[7] ?? "").split(",")[0] ?? "" });
  }
  return out;
}
