import { test } from "node:test";
import assert from "node:assert/strict";
import { Tracker } from "../../src/conntrack/tracker.js";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { buildIp } from "../../src/packet/build.js";
import { decodeFrame } from "../../src/packet/decode.js";
import { PacketView } from "../../src/packet/view.js";

// Kernel: ipv6_skip_exthdr() returns -1 at NEXTHDR_NONE, so nf_conntrack_in
// finds no transport header, counts `invalid` and attaches nothing
// (found by the kernel comparison, scenario ipv6-header-chain).
test("an IPv6 header chain ending in no-next-header is invalid and creates nothing", () => {
  const tracker = new Tracker({ sysctls: { nf_conntrack_checksum: 0 } });
  const view = new PacketView();
  for (const frame of [
    buildIp({ src: "fd00::1", dst: "fd00::2" }, 59, 0),
    buildIp({ src: "fd00::1", dst: "fd00::2", extHeaders: [{ type: "dest" }] }, 59, 0),
  ]) {
    decodeFrame(view.setFrame(frame));
    assert.equal(tracker.process(view), CT_STATE.INVALID);
  }
  assert.equal(tracker.count, 0);
  assert.equal(tracker.stats.invalid, 2);
});
