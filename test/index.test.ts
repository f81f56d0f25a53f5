import { test } from "node:test";
import assert from "node:assert/strict";
import * as ctlab from "../src/index.js";

// The public surface is a reviewed list: this test fails when a name is added
// or removed without updating it, so the change gets looked at.
test("public API is the reviewed list", () => {
  const names = Object.keys(ctlab).sort();
  assert.deepEqual(names, [
    "CTINFO",
    "CT_DROPPED",
    "CT_STATE",
    "CaptureError",
    "CompiledRuleset",
    "ConntrackStats",
    "CtResult",
    "DECODE_REASON",
    "DEFRAG",
    "DIR",
    "Defragmenter",
    "EVENT_TYPE",
    "EVICT_REASON_NAMES",
    "EnvironmentError",
    "EvalState",
    "EventLineSink",
    "HOOK",
    "INVALID_REASON",
    "INVALID_REASON_NAMES",
    "IPCT",
    "IPPROTO",
    "IPS",
    "LINKTYPE",
    "POLICY_NAMES",
    "PacketContext",
    "PacketSource",
    "PacketView",
    "PcapWriter",
    "PcapngWriter",
    "PolicyError",
    "REFUSE_REASON_NAMES",
    "RulesetSyntaxError",
    "SCTP_STATE",
    "SCTP_STATE_NAMES",
    "SYSCTLS",
    "SysctlError",
    "TCP_FLAG",
    "TCP_STATE",
    "TCP_STATE_NAMES",
    "Tracker",
    "VERDICT",
    "analysisToJson",
    "analyzeRuleset",
    "buildGre",
    "buildIcmp",
    "buildIcmpError",
    "buildSctp",
    "buildTcp",
    "buildUdp",
    "buildUdpLite",
    "compileRuleset",
    "convertNftText",
    "createHost",
    "ctStateName",
    "decodeFrame",
    "decodeReasonName",
    "decodeReasonText",
    "defaultSysctls",
    "detectFormat",
    "evaluateChain",
    "evaluateHook",
    "forEachPacket",
    "forEachPacketSync",
    "formatAnalysis",
    "formatEvent",
    "formatSummaryJson",
    "formatSummaryText",
    "fragment",
    "l4ChecksumOk",
    "loadRuleset",
    "notrackRulesFor",
    "parseIpsetSave",
    "parseIptables",
    "parseNftJson",
    "parseSelector",
    "parseSysctlAssignment",
    "parseSysctlFile",
    "replay",
    "resolveSysctls",
    "serializeIptables",
    "tcpStateName",
  ]);
});

test("the library example works: build, track, format", () => {
  const tracker = new ctlab.Tracker({ sysctls: { nf_conntrack_checksum: 0 } });
  const frames = [
    ctlab.buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: "S", seq: 1 }),
    ctlab.buildTcp({ src: "10.0.0.2", dst: "10.0.0.1", sport: 80, dport: 40000, flags: "SA", seq: 9, ack: 2 }),
    ctlab.buildTcp({ src: "10.0.0.1", dst: "10.0.0.2", sport: 40000, dport: 80, flags: "A", seq: 2, ack: 10 }),
  ];
  const view = new ctlab.PacketView();
  const states: number[] = [];
  for (const f of frames) {
    ctlab.decodeFrame(view.setFrame(f));
    states.push(tracker.process(view));
  }
  assert.deepEqual(states, [ctlab.CT_STATE.NEW, ctlab.CT_STATE.ESTABLISHED, ctlab.CT_STATE.ESTABLISHED]);
  assert.deepEqual(tracker.formatTable(), [
    "tcp      6 432000 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=40000 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=40000 [ASSURED] mark=0 use=1",
  ]);
});
