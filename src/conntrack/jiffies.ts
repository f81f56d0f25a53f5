/**
 * The tracker's notion of time, as the kernel's: `jiffies`, a wrapping u32
 * tick counter at CONFIG_HZ ticks per second, compared by signed 32-bit
 * difference (include/net/netfilter/nf_conntrack.h nf_ct_is_expired,
 * nf_ct_expires). Everything outside the table speaks milliseconds.
 */

/**
 * CONFIG_HZ of the reference kernel (Debian's config: CONFIG_HZ_250). It
 * decides the granularity of expiry, the UDP 2 s stream rule and the
 * truncation of displayed timeouts, exactly as it does in the kernel.
 */
export const HZ = 250;

/** Milliseconds per jiffy. */
export const MS_PER_JIFFY = 1000 / HZ;

/** The u32 jiffies value of a clock reading in milliseconds. */
export function jiffiesAt(ms: number): number {
  return Math.floor(ms / MS_PER_JIFFY) >>> 0;
}

/** msecs_to_jiffies: a duration in milliseconds, rounded up to whole jiffies. */
export function msToJiffies(ms: number): number {
  if (ms <= 0) return 0;
  const j = Math.ceil(ms / MS_PER_JIFFY);
  return j > 0x7fffffff ? 0x7fffffff : j;
}

/** Signed difference `a - b` of two u32 jiffies values (the kernel's `(s32)(a - b)`). */
export function jdiff(a: number, b: number): number {
  return (a - b) | 0;
}
