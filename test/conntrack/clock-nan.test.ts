import { test } from "node:test";
import assert from "node:assert/strict";
import { Tracker } from "../../src/conntrack/tracker.js";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { buildUdp } from "../../src/packet/build.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { PacketView } from "../../src/packet/view.js";

// replay() builds its tracker before the first packet is read: its clock
// reads NaN until then, and time must start at the first packet, not at 0.
test("a clock that reads NaN has no time yet; time starts at its first reading", () => {
  const clock = {
    ms: Number.NaN,
    now() {
      return this.ms;
    },
  };
  const tracker = new Tracker({ clock, sysctls: { nf_conntrack_checksum: 0 } });
  assert.deepEqual(tracker.formatTable(), []);
  const view = new PacketView();
  const f = buildUdp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 1000, dport: 53, payload: 10 });
  decodeFrame(view.setFrame(f));
  clock.ms = 1_795_600_000_000;
  assert.equal(tracker.process(view), CT_STATE.NEW);
  clock.ms += 10_000;
  assert.match(tracker.formatTable()[0] ?? "", /^udp {6}17 20 /);
  clock.ms += 25_000;
  assert.deepEqual(tracker.formatTable(), []);
});
