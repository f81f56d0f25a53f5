/**
 * nf_conntrack_tftp: a read or write request (RRQ, WRQ) on a connection
 * the helper is attached to expects the server's answer from any port, to
 * the client's address and port (the reply tuple's source and destination).
 * Policy: one expectation per connection, 5 minutes.
 */
import { IPPROTO } from "../../packet/view.js";
import type { PacketView } from "../../packet/view.js";
import { IPS } from "../constants.js";
import type { ConntrackHelper, HelperContext } from "./helper.js";

const TFTP_OPCODE_READ = 1;
const TFTP_OPCODE_WRITE = 2;

export const tftpHelper: ConntrackHelper<null> = {
  name: "tftp",
  proto: IPPROTO.UDP,
  maxExpected: 1,
  timeoutSec: 5 * 60,
  newState: () => null,
  help(ctx: HelperContext, p: PacketView, slot: number): boolean {
    // skb_header_pointer(protoff + sizeof(udphdr), sizeof(tftphdr)): the 2-byte opcode.
    const off = p.l4Off + 8;
    if (p.l4Len < 10 || off + 2 > p.data.length) return true;
    const opcode = ((p.data[off] as number) << 8) | (p.data[off + 1] as number);
    if (opcode !== TFTP_OPCODE_READ && opcode !== TFTP_OPCODE_WRITE) return true;
    const ok = ctx.expectRelated(
      {
        family: ctx.familyOf(slot),
        proto: IPPROTO.UDP,
        src: ctx.addr(slot, 1, "src"),
        srcMasked: true,
        sport: 0,
        sportMasked: false,
        dst: ctx.addr(slot, 1, "dst"),
        dport: ctx.port(slot, 1, "dst"),
        zone: ctx.zoneOf(slot),
        master: slot,
        // nf_nat_tftp: a NATed master's expected connection follows it.
        natFollow: (ctx.statusOf(slot) & (IPS.SRC_NAT | IPS.DST_NAT)) !== 0,
        savedPort: ctx.port(slot, 1, "dst"),
        natDir: 1,
      },
      slot,
    );
    if (!ok) ctx.log(slot, p, "cannot add expectation");
    return ok;
  },
};
