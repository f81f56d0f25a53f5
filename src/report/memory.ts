/**
 * What a conntrack table costs the kernel, as opposed to what ctlab's own
 * arrays cost. The kernel allocates one `nf_conntrack` slab object per entry
 * when it is created, one extension block per entry when any extension is
 * attached, and the bucket array (one 8-byte `hlist_nulls_head` per bucket)
 * up front (docs: kernel-conntrack.md §4).
 */

/**
 * Bytes of one `nf_conntrack` slab object: sizeof(struct nf_conn) (≈ 248 B on
 * x86_64 with the usual config) rounded up by SLAB_HWCACHE_ALIGN. Source:
 * /proc/slabinfo on Linux 6.18 x86_64 (`nf_conntrack ... 256 16 1`), matching
 * the struct layout in include/net/netfilter/nf_conntrack.h. Older kernels
 * (4.x, 5.x) report 304–320 B; read your own host's with
 * `grep nf_conntrack /proc/slabinfo`.
 */
export const NF_CONN_OBJECT_SIZE = 256;

/**
 * Bytes of the extension block (nf_conntrack_extend.c): one krealloc'd block
 * of at least NF_CT_EXT_PREALLOC = 128 bytes (kmalloc-128) as soon as any
 * extension is attached — accounting (nf_conntrack_acct), timestamps
 * (nf_conntrack_timestamp), events (nf_conntrack_events=1, or 2 with a
 * listener such as `conntrack -E`), NAT, helpers. Measured on 6.18: 20 000
 * flows with a listener added 20 000 kmalloc-128 objects.
 */
export const NF_CT_EXT_BLOCK_SIZE = 128;

/** Bytes per hash bucket: one hlist_nulls_head (a pointer) on 64-bit. */
export const BUCKET_SIZE = 8;

/** The kernel's memory for a table, by part. */
export interface KernelMemory {
  /** Slab object size used (bytes). */
  object_size: number;
  /** Extension block per entry (0 when no extension is attached). */
  extension_size: number;
  /** Entries × (object + extension). */
  entries_bytes: number;
  /** Buckets × 8. */
  buckets_bytes: number;
  /** entries_bytes + buckets_bytes. */
  total_bytes: number;
}

/** Which settings attach the extension block to every entry. */
export interface ExtensionSettings {
  acct: number;
  timestamp: number;
  events: number;
  /** A conntrack event listener exists (`--events` is one). */
  listener: boolean;
}

/** True when every new entry gets an extension block. */
export function extensionAttached(s: ExtensionSettings): boolean {
  return s.acct !== 0 || s.timestamp !== 0 || s.events === 1 || (s.events === 2 && s.listener);
}

/** Kernel memory of `entries` entries in a table of `buckets` buckets. */
export function kernelMemory(entries: number, buckets: number, extension: boolean): KernelMemory {
  const ext = extension ? NF_CT_EXT_BLOCK_SIZE : 0;
  const e = entries * (NF_CONN_OBJECT_SIZE + ext);
  const b = buckets * BUCKET_SIZE;
  return { object_size: NF_CONN_OBJECT_SIZE, extension_size: ext, entries_bytes: e, buckets_bytes: b, total_bytes: e + b };
}
