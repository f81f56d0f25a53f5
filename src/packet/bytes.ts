/**
 * Big-endian field readers for the decoders. Small enough for V8 to inline
 * at every call site, so the hot path reads `be16(d, o)` instead of spelling
 * the shifts, at the same cost. Callers check bounds; out of range reads give
 * 0 bits (undefined coerces to 0 in the shifts), never an exception.
 */

/** Unsigned 16-bit big-endian value at `o`. */
export function be16(d: Uint8Array, o: number): number {
  return ((d[o] as number) << 8) | (d[o + 1] as number);
}

/** Unsigned 32-bit big-endian value at `o`. */
export function be32(d: Uint8Array, o: number): number {
  return (((d[o] as number) << 24) | ((d[o + 1] as number) << 16) | ((d[o + 2] as number) << 8) | (d[o + 3] as number)) >>> 0;
}

/** Unsigned 32-bit little-endian value at `o`. */
export function le32(d: Uint8Array, o: number): number {
  return ((d[o] as number) | ((d[o + 1] as number) << 8) | ((d[o + 2] as number) << 16) | ((d[o + 3] as number) << 24)) >>> 0;
}
