import { expect } from "chai";
import {
  canonicalIpAddress,
  embeddedIpv4Kind,
  ipRangeContains,
  parseCidr,
  parseIpAddress,
  specialPurposeIpClass,
} from "../../../src/policy/ip-addresses.js";

function contains(cidr: string, address: string): boolean {
  const range = parseCidr(cidr);
  if (!range) expect.fail(`${cidr} should parse`);
  return ipRangeContains(range, address);
}

describe("IP addresses", () => {
  it("normalises IPv4-mapped IPv6 to IPv4 (as Go's To4 does), but not IPv4-compatible, :: or ::1", () => {
    expect(canonicalIpAddress("::ffff:10.96.0.1")).to.equal("10.96.0.1");
    expect(canonicalIpAddress("::FFFF:a60:1")).to.equal("10.96.0.1");
    expect(canonicalIpAddress("0:0:0:0:0:ffff:0a60:0001")).to.equal("10.96.0.1");
    // Go's To4 is nil for ::a.b.c.d: crypto/x509 and TLS clients read it as the IPv6 address ::a60:1.
    expect(canonicalIpAddress("::10.96.0.1")).to.equal("::a60:1");
    expect(canonicalIpAddress("::")).to.equal("::");
    expect(canonicalIpAddress("::1")).to.equal("::1");
    expect(canonicalIpAddress("FD00:0::0001")).to.equal("fd00::1");
    expect(embeddedIpv4Kind(parseIpAddress("::ffff:1.2.3.4")!)).to.equal("IPv4-mapped");
    expect(embeddedIpv4Kind(parseIpAddress("::1.2.3.4")!)).to.equal("IPv4-compatible");
    expect(embeddedIpv4Kind(parseIpAddress("64:ff9b::1.2.3.4")!)).to.equal(undefined);
  });

  it("refuses what is not an address: zones, leading zeros, names", () => {
    expect(parseIpAddress("fe80::1%eth0")).to.equal(undefined);
    expect(parseIpAddress("010.0.0.1")).to.equal(undefined);
    expect(parseIpAddress("node-1")).to.equal(undefined);
    expect(canonicalIpAddress("")).to.equal(undefined);
  });

  it("a range under ::/0 never contains an IPv4 address in IPv6 clothing (::ffff:10.96.0.1)", () => {
    expect(contains("::/0", "::ffff:10.96.0.1")).to.equal(false);
    expect(contains("10.96.0.0/12", "::ffff:10.96.0.1")).to.equal(true);
    expect(contains("10.1.0.0/16", "::ffff:10.96.0.1")).to.equal(false);
    expect(contains("::/0", "fd00::1")).to.equal(true);
    expect(contains("::/0", "::1")).to.equal(true);
  });

  it("ipRangeContains(10.0.0.0/8, ::a00:5) is false: an IPv4-compatible address is IPv6 to Go, compared as IPv6", () => {
    expect(contains("10.0.0.0/8", "::a00:5")).to.equal(false);
    expect(contains("10.0.0.0/8", "::10.0.0.5")).to.equal(false);
    expect(contains("::/96", "::10.0.0.5")).to.equal(true);
    expect(contains("::/0", "::10.96.0.1")).to.equal(true);
  });

  it("an IPv4-mapped range is the IPv4 range it maps", () => {
    expect(contains("::ffff:10.1.0.0/112", "10.1.255.1")).to.equal(true);
    expect(contains("::ffff:10.1.0.0/112", "10.2.0.1")).to.equal(false);
    expect(contains("::ffff:0:0/96", "192.0.2.1")).to.equal(true);
  });

  it("refuses malformed CIDRs", () => {
    for (const bad of ["10.0.0.0", "10.0.0.0/33", "::/129", "10.0.0.0/08", "fe80::%1/64", "a/8", "1/2/3"])
      expect(parseCidr(bad), bad).to.equal(undefined);
  });

  it("classifies special-purpose addresses, embedded IPv4 first", () => {
    const classes: [string, string | undefined][] = [
      ["127.0.0.1", "loopback"],
      ["::1", "loopback"],
      ["169.254.169.254", "link-local"],
      ["fe80::1", "link-local"],
      ["0.0.0.0", "unspecified"],
      ["::", "unspecified"],
      ["224.0.0.1", "multicast"],
      ["ff02::1", "multicast"],
      ["255.255.255.255", "broadcast"],
      ["::ffff:10.1.0.11", "IPv4-mapped IPv6"],
      ["::ffff:127.0.0.1", "IPv4-mapped IPv6"],
      ["::10.1.0.11", "IPv4-compatible IPv6"],
      ["10.1.0.11", undefined],
      ["fd00::11", undefined],
      ["2001:db8::1", undefined],
    ];
    for (const [address, expected] of classes)
      expect(specialPurposeIpClass(address), address).to.equal(expected);
  });
});
