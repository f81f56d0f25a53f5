/**
 * A binary min-heap of (time, key) pairs in typed arrays: the simulator's
 * event queue, with no allocation per event (it doubles when full). Ties
 * pop in insertion order, so a run is deterministic.
 */
export class EventHeap {
  #time: Float64Array;
  #seq: Float64Array;
  #key: Int32Array;
  #n = 0;
  #next = 0;

  constructor(capacity = 1024) {
    this.#time = new Float64Array(capacity);
    this.#seq = new Float64Array(capacity);
    this.#key = new Int32Array(capacity);
  }

  get size(): number {
    return this.#n;
  }

  /** Time of the earliest event, or Infinity when empty. */
  peekTime(): number {
    return this.#n === 0 ? Infinity : (this.#time[0] as number);
  }

  push(time: number, key: number): void {
    if (this.#n === this.#time.length) this.#grow();
    const t = this.#time;
    const s = this.#seq;
    const k = this.#key;
    const seq = this.#next++;
    let i = this.#n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = t[p] as number;
      if (pt < time || (pt === time && (s[p] as number) < seq)) break;
      t[i] = pt;
      s[i] = s[p] as number;
      k[i] = k[p] as number;
      i = p;
    }
    t[i] = time;
    s[i] = seq;
    k[i] = key;
  }

  /** Removes the earliest event and returns its key (the heap must not be empty). */
  pop(): number {
    const t = this.#time;
    const s = this.#seq;
    const k = this.#key;
    const top = k[0] as number;
    const n = --this.#n;
    if (n === 0) return top;
    const lt = t[n] as number;
    const ls = s[n] as number;
    const lk = k[n] as number;
    let i = 0;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && ((t[r] as number) < (t[c] as number) || ((t[r] as number) === (t[c] as number) && (s[r] as number) < (s[c] as number)))) c = r;
      const ct = t[c] as number;
      if (lt < ct || (lt === ct && ls < (s[c] as number))) break;
      t[i] = ct;
      s[i] = s[c] as number;
      k[i] = k[c] as number;
      i = c;
    }
    t[i] = lt;
    s[i] = ls;
    k[i] = lk;
    return top;
  }

  #grow(): void {
    const cap = this.#time.length * 2;
    const t = new Float64Array(cap);
    t.set(this.#time);
    const s = new Float64Array(cap);
    s.set(this.#seq);
    const k = new Int32Array(cap);
    k.set(this.#key);
    this.#time = t;
    this.#seq = s;
    this.#key = k;
  }
}
