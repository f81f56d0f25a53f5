/**
 * One worker of `replay --threads`: a tracker holding one part of the table
 * (the flows whose symmetric hash picks this worker), fed decoded packets in
 * batches through a shared ring (threads.ts describes the layout). At the end
 * it brings its clock to the last packet of the whole capture and reports its
 * counters, its live entries in `conntrack -L` order with what the merge
 * needs (bucket, confirmation packet), and the table-size timeline: entries
 * created and killed by packet number, entries expired by jiffy.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CT_STATE, EVENT_TYPE } from "../conntrack/constants.js";
import type { EntryReader } from "../conntrack/entry.js";
import type { EventSink, EventType } from "../conntrack/events.js";
import { CT_DROPPED, Tracker, trackerEngine } from "../conntrack/tracker.js";
import { TupleScratch } from "../conntrack/tuple.js";
import { MS_PER_JIFFY } from "../conntrack/jiffies.js";
import { PacketView } from "../packet/view.js";
import { readView } from "./wire.js";
import { CTRL, RING, type WorkerInit, type WorkerResult } from "./threads.js";

/** A growable Float64 column. */
class Column {
  a = new Float64Array(1024);
  n = 0;
  push(x: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = x;
  }
  done(): Float64Array {
    return this.a.slice(0, this.n);
  }
}

const init = workerData as WorkerInit;
const clock = {
  ms: Number.NaN,
  now(): number {
    return this.ms;
  },
};
const created = new Column();
const createdMs = new Column();
const killed = new Column();
const transient = new Column();
const transientMs = new Column();
/** Entries confirmed so far (the sink counts). */
let confirms = 0;
const expiredJ = new Column();
let confirmIdx = new Float64Array(1024);
let current = 0;
let advancing = false;

const sink: EventSink = {
  onEvent(type: EventType, _bits: number, entry: EntryReader, timeMs: number): void {
    if (type === EVENT_TYPE.NEW) {
      const id = entry.id;
      if (id >= confirmIdx.length) {
        const b = new Float64Array(Math.max(confirmIdx.length * 2, id + 1));
        b.set(confirmIdx);
        confirmIdx = b;
      }
      confirmIdx[id] = current;
      created.push(current);
      createdMs.push(clock.ms);
      confirms++;
    } else if (type === EVENT_TYPE.DESTROY) {
      if (advancing) expiredJ.push(Math.floor(timeMs / MS_PER_JIFFY));
      else killed.push(current);
    }
  },
};

const log: { idx: number; time: number; line: string }[] = [];
const tracker = new Tracker({
  sysctls: init.sysctls,
  clock,
  seed: init.seed,
  events: sink,
  log: (timeMs, line) => {
    if (log.length < 10000) log.push({ idx: current, time: timeMs / 1000, line });
  },
});

const engine = trackerEngine(tracker);
const ctrl = new Int32Array(init.sab, 0, CTRL.CELLS);
const view = new PacketView();
const counts = { new: 0, established: 0, related: 0, invalid: 0, untracked: 0, dropped: 0 };

function runBatch(slot: number): void {
  const cellsAt = RING.HEADER + slot * init.slotBytes;
  const head = new Int32Array(init.sab, cellsAt, 2);
  const n = head[0] as number;
  const f = new Float64Array(init.sab, cellsAt + 8, init.batch * init.cells);
  const bytes = new Uint8Array(init.sab, cellsAt + 8 + init.batch * init.cells * 8, init.bytesPerSlot);
  for (let i = 0; i < n; i++) {
    const o = i * init.cells;
    current = f[o + RING.IDX] as number;
    readView(view, f, o + RING.VIEW, bytes, f[o + RING.AT] as number);
    const ms = f[o + RING.CLOCK] as number;
    clock.ms = ms;
    advancing = true;
    tracker.advance(ms);
    advancing = false;
    // engine.peak records the table's size at an allocation: an entry allocated and freed within the packet
    // (never confirmed) still counts in a single tracker's peak.
    engine.peak = -1;
    const confirmsBefore = confirms;
    const s = tracker.process(view);
    if (engine.peak >= 0 && confirms === confirmsBefore) {
      transient.push(current);
      transientMs.push(ms);
    }
    if (s === CT_DROPPED) counts.dropped++;
    else if (s === CT_STATE.ESTABLISHED) counts.established++;
    else if (s === CT_STATE.NEW) counts.new++;
    else if (s === CT_STATE.INVALID) counts.invalid++;
    else if (s === CT_STATE.RELATED) counts.related++;
    else if (s === CT_STATE.UNTRACKED) counts.untracked++;
  }
}

function finish(lastClockMs: number): WorkerResult {
  if (lastClockMs === lastClockMs) {
    clock.ms = lastClockMs;
    advancing = true;
    tracker.advance(lastClockMs);
    advancing = false;
  }
  const tb = engine.table;
  const t = new TupleScratch();
  const n = tracker.count;
  const bucket = new Float64Array(n);
  const order = new Float64Array(n);
  const meta = new Float64Array(n * 4);
  const addr = new Uint32Array(n * 8);
  const states: string[] = [];
  const stateOf = new Map<string, number>();
  const lines: string[] = [];
  let k = 0;
  for (const r of tracker.entries()) {
    tb.loadTuple(r.id, t);
    bucket[k] = tb.bucketOf(t.hash);
    order[k] = confirmIdx[r.id] as number;
    let si = stateOf.get(r.stateName);
    if (si === undefined) {
      si = states.length;
      states.push(r.stateName);
      stateOf.set(r.stateName, si);
    }
    const tu = r.tuple(0);
    meta[k * 4] = r.family + r.proto * 256 + si * 65536;
    meta[k * 4 + 1] = r.status;
    meta[k * 4 + 2] = r.timeoutSeconds;
    meta[k * 4 + 3] = tu.dport + tu.sport * 65536;
    addr.set([tu.s0, tu.s1, tu.s2, tu.s3, tu.d0, tu.d1, tu.d2, tu.d3], k * 8);
    if (init.lines) lines.push(tracker.formatEntry(r.id, { extended: true }));
    k++;
  }
  const st = tracker.stats;
  return {
    counts,
    stats: st.entries(),
    reasons: st.reasons(),
    checksumOffloaded: st.checksumOffloaded,
    memoryBytes: tracker.memoryBytes,
    entries: k,
    bucket: bucket.subarray(0, k),
    order: order.subarray(0, k),
    meta: meta.subarray(0, k * 4),
    addr: addr.subarray(0, k * 8),
    states,
    lines,
    created: created.done(),
    createdMs: createdMs.done(),
    killed: killed.done(),
    transient: transient.done(),
    transientMs: transientMs.done(),
    expiredJ: expiredJ.done(),
    log,
  };
}

// The ring: batches [read, written) are ready; the reader thread sets DONE (and the last clock) after the last one.
let read = 0;
for (;;) {
  const written = Atomics.load(ctrl, CTRL.WRITTEN);
  if (read < written) {
    runBatch(read % init.slots);
    read++;
    Atomics.store(ctrl, CTRL.READ, read);
    Atomics.notify(ctrl, CTRL.READ);
    continue;
  }
  if (Atomics.load(ctrl, CTRL.DONE) === 1 && read === Atomics.load(ctrl, CTRL.WRITTEN)) break;
  Atomics.wait(ctrl, CTRL.WRITTEN, written, 1000);
}
const last = new Float64Array(init.sab, CTRL.CELLS * 4, 1)[0] as number;
parentPort?.postMessage(finish(last));
