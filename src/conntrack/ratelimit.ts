/**
 * net_ratelimit() (net/core/utils.c over lib/ratelimit.c ___ratelimit) for
 * the one rate-limited message conntrack prints on the packet path, "table
 * full". Defaults are net.core.message_cost = 5 (seconds) and
 * net.core.message_burst = 10.
 */
import { HZ, jdiff } from "./jiffies.js";

/** A ratelimit_state driven by the tracker's jiffies. */
export class RateLimit {
  private readonly interval: number;
  private readonly burst: number;
  private begin = 0;
  private initialized = false;
  private left = 0;
  private missed = 0;

  constructor(intervalJiffies = 5 * HZ, burst = 10) {
    this.interval = intervalJiffies;
    this.burst = burst;
  }

  /**
   * Callbacks suppressed in the interval that the last `allow()` closed, to
   * be reported before anything else ("net_ratelimit: n callbacks
   * suppressed"); 0 when there is nothing to report.
   */
  suppressed = 0;

  /** ___ratelimit: true when the caller may print; sets `suppressed` first. */
  allow(now: number): boolean {
    this.suppressed = 0;
    if (this.interval === 0) return true;
    if (!this.initialized) {
      this.begin = now;
      this.initialized = true;
      this.left = this.burst;
    }
    // time_is_before_jiffies(begin + interval)
    if (jdiff(now, (this.begin + this.interval) >>> 0) > 0) {
      this.left = this.burst;
      this.begin = now;
      this.suppressed = this.missed;
      this.missed = 0;
    }
    if (this.burst > 0) {
      this.left--;
      if (this.left >= 0) return true;
    }
    this.missed++;
    return false;
  }
}
