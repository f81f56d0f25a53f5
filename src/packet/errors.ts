/**
 * The one error the capture boundary throws. Everything a reader can meet in
 * a file it did not write maps to one of these reasons; anything else that
 * escapes is a bug.
 */

/** Why a capture could not be read further. */
export type CaptureErrorReason =
  /** The first bytes are no pcap or pcapng magic. */
  | "unknown-format"
  /** The file ends inside the pcap file header or the first pcapng section header. */
  | "truncated-file-header"
  /** The file ends inside a pcap record or a pcapng block. */
  | "truncated-record"
  /** A pcap record claims more bytes than any capture can hold. */
  | "bad-record-length"
  /** A pcapng block length is too small, not a multiple of 4, or disagrees with its trailing copy. */
  | "bad-block-length"
  /** A pcapng section header has an unknown byte-order magic or version. */
  | "bad-section-header"
  /** A pcapng packet block is inconsistent (captured length beyond the block, body too short). */
  | "bad-block"
  /** A pcapng packet block names an interface that was not described. */
  | "unknown-interface"
  /** Opening or reading the input failed. */
  | "io-error";

/**
 * A capture that is truncated or corrupt, or could not be read. Thrown after
 * every record before `byteOffset` was delivered.
 */
export class CaptureError extends Error {
  /** The input's name: the path, or "-" for stdin, or the name given to the parser. */
  readonly file: string;
  /** Byte offset in the input where the offending header, record or block starts. */
  readonly byteOffset: number;
  readonly reason: CaptureErrorReason;

  constructor(file: string, byteOffset: number, reason: CaptureErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CaptureError";
    this.file = file;
    this.byteOffset = byteOffset;
    this.reason = reason;
  }
}
