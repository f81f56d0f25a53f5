/**
 * ctlab public API. This list is reviewed: add to it deliberately.
 */
export { PacketView, IPPROTO, TCP_FLAG } from "./packet/view.js";
export { IPS, IPCT, CTINFO, CT_STATE, HOOK, DIR } from "./conntrack/constants.js";
export type { CtContext, L4Tracker } from "./conntrack/l4.js";
