/**
 * The host's input route decision (ip_route_input_slow, ip_route_input_mc,
 * fib_validate_source, ip6_rcv_core / ip6_route_input / ip6_forward) and
 * what it means for conntrack: a packet PREROUTING saw but routing dropped
 * never confirms its entry.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CT_STATE } from "../../src/conntrack/constants.js";
import { VERDICT } from "../../src/firewall/eval.js";
import { checkRoutingSysctl, HostModel, HostSpecError, hostOptionsFromIpJson, parseLocalSpecs, RT } from "../../src/firewall/host.js";
import type { HostModelOptions } from "../../src/firewall/host.js";
import { DROP_REASON, ROUTE } from "../../src/firewall/path.js";
import { parseAddr } from "../../src/firewall/values.js";
import { ipt, rig } from "./path-helpers.js";

const w = (a: string): Uint32Array => parseAddr(a)!.words;

function host(o: HostModelOptions = {}): HostModel {
  return new HostModel({ addrs: parseLocalSpecs(["eth0=192.0.2.1/24", "eth1=10.0.0.1/8", "eth0=2001:db8::1/64"]), defaultIface: "eth0", ...o });
}

/** The decision for a packet from `src` to `dst` arriving on `iif`. */
function rt(h: HostModel, src: string, dst: string, iif = "eth0", proto = 6, ttl = 64): number {
  const s = parseAddr(src)!;
  return h.routeInput(s.family, s.words, w(dst), iif, proto, ttl);
}

describe("ip_route_input (IPv4)", () => {
  it("delivers to own addresses and forwards the rest", () => {
    const h = host();
    assert.equal(rt(h, "198.51.100.7", "192.0.2.1"), RT.LOCAL);
    assert.equal(rt(h, "198.51.100.7", "10.0.0.1"), RT.LOCAL, "an address of another interface is local too");
    assert.equal(rt(h, "198.51.100.7", "10.1.2.3"), RT.FORWARD);
  });

  it("drops martian sources and destinations", () => {
    const h = host();
    assert.equal(rt(h, "224.0.0.5", "192.0.2.1"), RT.MARTIAN_SOURCE, "multicast source");
    assert.equal(rt(h, "255.255.255.255", "192.0.2.1"), RT.MARTIAN_SOURCE, "limited broadcast source");
    assert.equal(rt(h, "0.0.0.0", "192.0.2.1"), RT.MARTIAN_SOURCE, "zero source");
    assert.equal(rt(h, "198.51.100.7", "0.0.0.0"), RT.MARTIAN_DESTINATION, "zero destination");
    // Linux 5.3 made the rest of 0/8 unicast.
    assert.equal(rt(h, "0.1.2.3", "192.0.2.1"), RT.LOCAL);
    assert.equal(rt(h, "198.51.100.7", "0.0.0.9"), RT.FORWARD);
    assert.equal(rt(h, "198.51.100.7", "127.0.0.1"), RT.MARTIAN_DESTINATION, "loopback destination");
    assert.equal(rt(h, "127.0.0.1", "192.0.2.1"), RT.MARTIAN_SOURCE, "loopback source");
    assert.equal(rt(h, "192.0.2.1", "10.0.0.1"), RT.MARTIAN_SOURCE, "own address as source");
  });

  it("class-E sources are routed like any unicast (only multicast and 255.255.255.255 are refused early)", () => {
    assert.equal(rt(host(), "240.0.0.1", "192.0.2.1"), RT.LOCAL);
  });

  it("route_localnet lets 127/8 through, accept_local lets own sources through", () => {
    const h = host({ sysctls: { "net.ipv4.conf.eth0.route_localnet": 1, "net.ipv4.conf.all.accept_local": 1 } });
    assert.equal(rt(h, "198.51.100.7", "127.0.0.1"), RT.LOCAL);
    assert.equal(rt(h, "127.0.0.1", "192.0.2.1"), RT.LOCAL);
    assert.equal(rt(h, "192.0.2.1", "10.0.0.1"), RT.LOCAL);
    // Per interface: eth1 has no route_localnet.
    assert.equal(rt(h, "198.51.100.7", "127.0.0.1", "eth1"), RT.MARTIAN_DESTINATION);
  });

  it("rp_filter: strict wants the route back by the input interface, loose any route", () => {
    const strict = host({ sysctls: { "net.ipv4.conf.all.rp_filter": 1 } });
    assert.equal(rt(strict, "10.9.9.9", "192.0.2.1", "eth1"), RT.LOCAL);
    assert.equal(rt(strict, "10.9.9.9", "192.0.2.1", "eth0"), RT.RP_FILTER, "10/8 routes by eth1");
    assert.equal(rt(strict, "198.51.100.7", "192.0.2.1", "eth1"), RT.RP_FILTER, "the default route is eth0");
    const loose = host({ sysctls: { "net.ipv4.conf.eth0.rp_filter": 2 } });
    assert.equal(rt(loose, "10.9.9.9", "192.0.2.1", "eth0"), RT.LOCAL);
    // The larger of all and the device wins.
    const both = host({ sysctls: { "net.ipv4.conf.all.rp_filter": 1, "net.ipv4.conf.eth0.rp_filter": 2 } });
    assert.equal(rt(both, "10.9.9.9", "192.0.2.1", "eth0"), RT.LOCAL);
    const noDefault = host({ defaultRoute: false, sysctls: { "net.ipv4.conf.all.rp_filter": 2 } });
    assert.equal(rt(noDefault, "198.51.100.7", "192.0.2.1"), RT.RP_FILTER, "loose with no route back");
    assert.equal(rt(noDefault, "192.0.2.7", "198.51.100.7"), RT.NO_ROUTE, "no route to the destination");
  });

  it("rp_filter rejects a broadcast source even when loose", () => {
    const h = host({ sysctls: { "net.ipv4.conf.all.rp_filter": 2 } });
    assert.equal(rt(h, "192.0.2.255", "10.0.0.1"), RT.MARTIAN_SOURCE);
  });

  it("delivers limited and directed broadcasts of its prefixes, validating non-zero sources", () => {
    const h = host();
    assert.equal(rt(h, "192.0.2.7", "255.255.255.255", "eth0", 17), RT.LOCAL);
    assert.equal(rt(h, "0.0.0.0", "255.255.255.255", "eth0", 17), RT.LOCAL, "DHCP discover");
    assert.equal(rt(h, "192.0.2.7", "192.0.2.255", "eth0", 17), RT.LOCAL);
    assert.equal(rt(h, "192.0.2.1", "192.0.2.255", "eth0", 17), RT.MARTIAN_SOURCE, "own source without accept_local");
    assert.equal(rt(h, "198.51.100.7", "198.51.100.255", "eth0", 17), RT.FORWARD, "not one of its prefixes: unicast");
  });

  it("delivers multicast only for joined groups; 224.0.0.1 is always joined", () => {
    const h = host({ groups: [{ iface: "eth1", family: 4, words: w("239.1.1.1") }] });
    assert.equal(rt(h, "192.0.2.7", "224.0.0.1", "eth0", 17), RT.LOCAL);
    assert.equal(rt(h, "192.0.2.7", "239.1.1.1", "eth0", 17), RT.MC_NOT_JOINED, "joined on eth1 only");
    assert.equal(rt(h, "10.2.3.4", "239.1.1.1", "eth1", 17), RT.LOCAL);
    assert.equal(rt(h, "0.0.0.0", "224.0.0.1", "eth0", 2), RT.LOCAL, "zero source to a link-local group");
    assert.equal(rt(h, "224.0.0.9", "224.0.0.1", "eth0", 17), RT.MARTIAN_SOURCE);
    assert.equal(rt(h, "127.0.0.1", "224.0.0.1", "eth0", 17), RT.MARTIAN_SOURCE);
  });

  it("drops a forwarded packet whose TTL would expire, not a local one", () => {
    const h = host();
    assert.equal(rt(h, "198.51.100.7", "10.1.2.3", "eth0", 6, 1), RT.TTL_EXCEEDED);
    assert.equal(rt(h, "198.51.100.7", "192.0.2.1", "eth0", 6, 1), RT.LOCAL);
  });

  it("without forwarding, a packet to another host has no route", () => {
    assert.equal(rt(host({ sysctls: { "net.ipv4.ip_forward": 0 } }), "198.51.100.7", "10.1.2.3"), RT.NO_ROUTE);
  });

  it("local routes (AnyIP) make their destinations local and sources from them martian", () => {
    const h = new HostModel({
      ...hostOptionsFromIpJson("[]"),
      localRoutes: [{ family: 4, lo: w("203.0.113.0"), hi: w("203.0.113.255"), prefixLen: 24, iface: "lo" }],
    });
    assert.equal(rt(h, "198.51.100.7", "203.0.113.77"), RT.LOCAL);
    assert.equal(rt(h, "203.0.113.9", "198.51.100.7"), RT.MARTIAN_SOURCE);
  });
});

describe("ip6 input", () => {
  it("drops loopback, multicast sources and scope-0/1 multicast before PREROUTING", () => {
    const h = host();
    const s = (a: string, b: string, iif = "eth0") => h.receiveDrop(6, w(a), w(b), iif);
    assert.equal(s("::1", "2001:db8::1"), RT.V6_RCV);
    assert.equal(s("2001:db8::7", "::1"), RT.V6_RCV);
    assert.equal(s("ff02::1", "2001:db8::1"), RT.V6_RCV);
    assert.equal(s("2001:db8::7", "ff01::1"), RT.V6_RCV);
    assert.equal(s("2001:db8::7", "ff00::1"), RT.V6_RCV);
    assert.equal(s("2001:db8::7", "ff02::1"), 0);
    assert.equal(s("::1", "::1", "lo"), 0);
  });

  it("joins ff02::1, the solicited-node groups of its addresses and (forwarding) ff02::2", () => {
    const h = host();
    assert.equal(rt(h, "fe80::7", "ff02::1", "eth0", 58), RT.LOCAL);
    assert.equal(rt(h, "fe80::7", "ff02::1:ff00:1", "eth0", 58), RT.LOCAL);
    assert.equal(rt(h, "fe80::7", "ff02::1:ff00:2", "eth0", 58), RT.MC_NOT_JOINED);
    assert.equal(rt(h, "fe80::7", "ff02::2", "eth0", 58), RT.LOCAL);
    assert.equal(rt(h, "fe80::7", "ff02::fb", "eth0", 17), RT.MC_NOT_JOINED);
    assert.equal(rt(host({ sysctls: { "net.ipv6.conf.all.forwarding": 0 } }), "fe80::7", "ff02::2", "eth0", 58), RT.MC_NOT_JOINED);
  });

  it("does not forward link-local or unspecified sources to another interface", () => {
    const h = host({ routes: [{ family: 6, lo: w("2001:db8:1::"), hi: w("2001:db8:1:ffff:ffff:ffff:ffff:ffff"), prefixLen: 48, iface: "eth1" }] });
    assert.equal(rt(h, "fe80::7", "2001:db8:1::5", "eth0"), RT.BAD_SOURCE_V6);
    assert.equal(rt(h, "::", "2001:db8:1::5", "eth0"), RT.BAD_SOURCE_V6);
    assert.equal(rt(h, "2001:db8::7", "2001:db8:1::5", "eth0"), RT.FORWARD);
    assert.equal(rt(h, "fe80::7", "fe80::9", "eth0"), RT.FORWARD, "link-local destination: back out the same link");
    assert.equal(rt(h, "2001:db8::7", "2001:db8:1::5", "eth0", 6, 1), RT.TTL_EXCEEDED);
  });
});

describe("routing sysctls", () => {
  it("are checked by name and range", () => {
    checkRoutingSysctl("net.ipv4.conf.eth0.rp_filter", 2);
    assert.throws(() => checkRoutingSysctl("net.ipv4.conf.eth0.rp_filter", 3), HostSpecError);
    assert.throws(() => checkRoutingSysctl("net.ipv4.conf.all.accept_local", 2), /must be 0 to 1/);
    assert.throws(() => checkRoutingSysctl("net.ipv4.conf.all.rp_filtre", 1), /Unknown routing sysctl "net.ipv4.conf.all.rp_filtre"/);
  });

  it("are read from ip -j output: local table routes and joined groups", () => {
    const o = hostOptionsFromIpJson(
      '[{"ifname":"eth0","addr_info":[{"family":"inet","local":"192.0.2.1","prefixlen":24}]}]',
      ['[{"dst":"192.0.2.0/24","dev":"eth0"}]'],
      {
        localTable: [
          '[{"type":"local","dst":"192.0.2.1","dev":"eth0"},{"type":"local","dst":"127.0.0.0/8","dev":"lo"},{"type":"local","dst":"203.0.113.0/24","dev":"lo"},{"type":"broadcast","dst":"192.0.2.255","dev":"eth0"}]',
        ],
        maddr: '[{"ifindex":2,"ifname":"eth0","maddr":[{"link":"01:00:5e:00:00:01"},{"family":"inet","address":"239.2.2.2"}]}]',
      },
    );
    assert.equal(o.defaultRoute, false, "no default route in the table");
    assert.equal(o.localRoutes?.length, 1);
    assert.equal(o.groups?.length, 1);
    const h = new HostModel(o);
    assert.equal(rt(h, "192.0.2.9", "203.0.113.4"), RT.LOCAL);
    assert.equal(rt(h, "192.0.2.9", "239.2.2.2", "eth0", 17), RT.LOCAL);
    assert.equal(rt(h, "192.0.2.9", "198.51.100.1"), RT.NO_ROUTE);
  });
});

describe("the packet path with the route decision", () => {
  const stateful = ipt({ filter: ["-A INPUT -m conntrack --ctstate NEW -j ACCEPT", "-A FORWARD -m conntrack --ctstate NEW -j ACCEPT"] });

  it("a packet captured arriving on --iif is PREROUTING even from a local or loopback source", () => {
    const fw = rig(stateful, { host: { addrs: parseLocalSpecs(["eth0=192.0.2.1/24"]), iif: "eth0" } });
    const r = fw.udp({ src: "192.0.2.1", dst: "192.0.2.9", sport: 1000, dport: 53 });
    assert.equal(r.route, ROUTE.FORWARD);
    assert.equal(r.verdict, VERDICT.DROP);
    assert.equal(r.dropReason, DROP_REASON.ROUTE);
    assert.equal(r.routeReason, RT.MARTIAN_SOURCE);
    assert.equal(r.state, CT_STATE.NEW, "PREROUTING's conntrack saw it");
    const r2 = fw.udp({ src: "127.0.0.1", dst: "192.0.2.1", sport: 1000, dport: 53 });
    assert.equal(r2.routeReason, RT.MARTIAN_SOURCE);
    assert.deepEqual(fw.table(), [], "neither entry was confirmed");
    assert.equal(fw.tr.count, 0);
    assert.equal(fw.path.stats.routeDrops.martianSource, 2);
    assert.equal(fw.path.stats.dropsByReason.route, 2);
  });

  it("without --iif a packet from an own address is the host's own traffic (OUTPUT)", () => {
    const fw = rig(stateful, { local: ["eth0=192.0.2.1/24"] });
    const r = fw.udp({ src: "192.0.2.1", dst: "198.51.100.7", sport: 1000, dport: 53 });
    assert.equal(r.route, ROUTE.OUTPUT);
    assert.equal(fw.table().length, 1);
  });

  it("multicast to a group not joined is never confirmed; to 224.0.0.1 it is, through INPUT", () => {
    const fw = rig(stateful, { local: ["eth0=192.0.2.1/24"] });
    const r = fw.udp({ src: "192.0.2.7", dst: "239.255.255.250", sport: 1900, dport: 1900 });
    assert.equal(r.routeReason, RT.MC_NOT_JOINED);
    assert.equal(fw.tr.count, 0);
    const r2 = fw.udp({ src: "192.0.2.7", dst: "224.0.0.1", sport: 5000, dport: 5000 });
    assert.equal(r2.route, ROUTE.INPUT);
    assert.equal(r2.verdict, VERDICT.ACCEPT);
    assert.equal(fw.tr.count, 1);
    assert.equal(fw.path.stats.routeDrops.multicastNotJoined, 1);
  });

  it("routes the DNAT'ed destination: a port forward to a martian is dropped after PREROUTING", () => {
    const fw = rig(ipt({ nat: ["-A PREROUTING -p udp --dport 53 -j DNAT --to-destination 127.0.0.1"] }), {
      local: ["eth0=192.0.2.1/24"],
      host: { iif: "eth0" },
    });
    const r = fw.udp({ src: "198.51.100.7", dst: "192.0.2.1", sport: 1000, dport: 53 });
    assert.equal(r.routeReason, RT.MARTIAN_DESTINATION);
    assert.equal(fw.tr.count, 0);
  });

  it("IPv6 packets ip6_rcv drops are never seen by conntrack", () => {
    const fw = rig(stateful, { local: ["eth0=2001:db8::1/64"], host: { iif: "eth0" } });
    const r = fw.udp({ src: "::1", dst: "2001:db8::1", sport: 1000, dport: 53 });
    assert.equal(r.routeReason, RT.V6_RCV);
    assert.equal(r.state, 0);
    assert.equal(fw.path.stats.tracked, 0);
  });
});
