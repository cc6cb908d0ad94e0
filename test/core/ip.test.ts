import { describe, expect, it } from "vitest";
import { classifyIp, isIpLiteral, parseIp, parseIpRange, rangeContains, type IpClass, type IpRange, type ParsedIp } from "../../src/core/ip.js";

const ip = (text: string): ParsedIp => {
  const parsed = parseIp(text);
  if (parsed === undefined) throw new Error(`fixture ${text} is not an IP`);
  return parsed;
};
const range = (text: string): IpRange => {
  const parsed = parseIpRange(text);
  if (parsed === undefined) throw new Error(`fixture ${text} is not a CIDR`);
  return parsed;
};

describe("parseIp", () => {
  it.each([
    ["1.2.3.4", 4, "1.2.3.4", 0x01020304n],
    ["0.0.0.0", 4, "0.0.0.0", 0n],
    ["255.255.255.255", 4, "255.255.255.255", 0xffffffffn],
    ["127.0.0.1", 4, "127.0.0.1", 0x7f000001n],
    ["::", 6, "::", 0n],
    ["::1", 6, "::1", 1n],
    ["[::1]", 6, "::1", 1n],
    ["2001:db8::1", 6, "2001:db8::1", 0x20010db8000000000000000000000001n],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", 6, "2001:0db8:0000:0000:0000:0000:0000:0001", 0x20010db8000000000000000000000001n],
    ["FE80::1", 6, "FE80::1", 0xfe800000000000000000000000000001n],
  ])("parses %j as IPv%i", (raw, version, text, value) => {
    expect(parseIp(raw)).toEqual({ text, version, value });
  });

  // An IPv4-mapped IPv6 address reaches the IPv4 host, so it must look like one.
  it.each([
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::FFFF:127.0.0.1", "127.0.0.1"],
    ["::ffff:7f00:1", "127.0.0.1"],
    ["[::ffff:127.0.0.1]", "127.0.0.1"],
    ["0:0:0:0:0:ffff:7f00:0001", "127.0.0.1"],
    ["::ffff:169.254.169.254", "169.254.169.254"],
    ["::ffff:a9fe:a9fe", "169.254.169.254"],
    ["::ffff:0.0.0.0", "0.0.0.0"],
    ["::ffff:255.255.255.255", "255.255.255.255"],
  ])("reads the IPv4-mapped %j as IPv4 %s", (raw, v4) => {
    const parsed = parseIp(raw);
    expect(parsed?.version).toBe(4);
    expect(parsed?.text).toBe(v4);
    expect(parsed?.value).toBe(ip(v4).value);
  });

  it.each([
    [""],
    // Taken for IPv6 by the library's sniffing, then thrown on by its parser: a client can send these.
    [":@a/"],
    ["[:@a/]"],
    ["300.1.1.1"],
    ["256.0.0.0"],
    ["1.2.3.256"],
    ["01.2.3.4"],
    ["1.2.3.04"],
    ["00.0.0.0"],
    ["1.2.3"],
    ["1.2.3.4.5"],
    ["1.2.3.4."],
    [" 1.2.3.4"],
    ["1.2.3.4 "],
    ["1.2.3.-4"],
    ["+1.2.3.4"],
    ["1.2.3.4/32"],
    ["1.2.3.4:80"],
    // Forms inet_aton would accept; a strict parser must not.
    ["2130706433"],
    ["0x7f000001"],
    ["0x7f.0.0.1"],
    ["0177.0.0.1"],
    ["127.1"],
    // IPv6 forms that are malformed, scoped or half-bracketed.
    ["fe80::1%eth0"],
    ["fe80::1%25eth0"],
    ["[fe80::1%eth0]"],
    ["[::1"],
    ["::1]"],
    ["[[::1]]"],
    ["1::2::3"],
    [":::"],
    ["gggg::1"],
    ["1:2:3:4:5:6:7:8:9"],
    ["12345::1"],
    ["::ffff:300.1.1.1"],
    ["::1/128"],
    ["localhost"],
    ["example.com"],
  ])("rejects %j", (raw) => {
    expect(parseIp(raw)).toBeUndefined();
    expect(isIpLiteral(raw)).toBe(false);
  });

  it("isIpLiteral agrees with parseIp", () => {
    expect(isIpLiteral("10.0.0.1")).toBe(true);
    expect(isIpLiteral("::1")).toBe(true);
    expect(isIpLiteral("[::1]")).toBe(true);
  });
});

describe("parseIpRange", () => {
  it.each([
    ["10.0.0.0/8", "10.0.0.0/8", 4, 0x0a000000n, 0x0affffffn],
    ["10.1.2.3/8", "10.1.2.3/8", 4, 0x0a000000n, 0x0affffffn],
    ["0.0.0.0/0", "0.0.0.0/0", 4, 0n, 0xffffffffn],
    ["192.168.1.7/32", "192.168.1.7/32", 4, 0xc0a80107n, 0xc0a80107n],
    ["192.168.1.7", "192.168.1.7/32", 4, 0xc0a80107n, 0xc0a80107n],
    ["10.0.0.0/08", "10.0.0.0/8", 4, 0x0a000000n, 0x0affffffn],
    ["::/0", "::/0", 6, 0n, (1n << 128n) - 1n],
    ["::1", "::1/128", 6, 1n, 1n],
    ["2001:db8::/32", "2001:db8::/32", 6, 0x20010db8n << 96n, ((0x20010db8n + 1n) << 96n) - 1n],
    ["fd00::/8", "fd00::/8", 6, 0xfdn << 120n, ((0xfdn + 1n) << 120n) - 1n],
  ])("parses %j", (raw, cidr, version, start, end) => {
    expect(parseIpRange(raw)).toEqual({ cidr, version, start, end });
  });

  it.each([
    ["10.0.0.0/33"],
    ["::/129"],
    ["::1/999"],
    ["10.0.0.0/1000"],
    ["300.1.1.1/8"],
    ["01.2.3.4/8"],
    ["10.0.0.0/"],
    ["10.0.0.0/-1"],
    ["10.0.0.0/+8"],
    ["10.0.0.0/ 8"],
    ["10.0.0.0/8 "],
    ["10.0.0.0/0x8"],
    ["10.0.0.0/8/8"],
    ["/8"],
    [""],
    ["[::1]/128"],
    ["fe80::%eth0/64"],
    ["2130706433/32"],
    ["example.com/24"],
  ])("rejects %j", (raw) => {
    expect(parseIpRange(raw)).toBeUndefined();
  });
});

describe("rangeContains", () => {
  const ten = range("10.0.0.0/8");
  const doc6 = range("2001:db8::/32");

  it.each([
    ["10.0.0.0", true],
    ["10.255.255.255", true],
    ["10.128.0.1", true],
    ["9.255.255.255", false],
    ["11.0.0.0", false],
    ["::ffff:10.1.2.3", true],
    ["::ffff:a01:203", true],
    ["::ffff:11.0.0.0", false],
    // The same 32 bits as an IPv6 address are not in an IPv4 range.
    ["::a00:1", false],
  ])("10.0.0.0/8 contains %s: %s", (addr, expected) => {
    expect(rangeContains(ten, ip(addr))).toBe(expected);
  });

  it.each([
    ["2001:db8::", true],
    ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true],
    ["2001:db8:1::1", true],
    ["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false],
    ["2001:db9::", false],
    ["10.0.0.1", false],
  ])("2001:db8::/32 contains %s: %s", (addr, expected) => {
    expect(rangeContains(doc6, ip(addr))).toBe(expected);
  });

  it("holds a /32 and a /128 to a single address", () => {
    expect(rangeContains(range("192.0.2.1/32"), ip("192.0.2.1"))).toBe(true);
    expect(rangeContains(range("192.0.2.1/32"), ip("192.0.2.2"))).toBe(false);
    expect(rangeContains(range("192.0.2.1/32"), ip("192.0.2.0"))).toBe(false);
    expect(rangeContains(range("::1/128"), ip("::1"))).toBe(true);
    expect(rangeContains(range("::1/128"), ip("::2"))).toBe(false);
    expect(rangeContains(range("::1/128"), ip("::"))).toBe(false);
  });

  it("never lets 0.0.0.0/0 match IPv6, nor ::/0 match IPv4", () => {
    expect(rangeContains(range("0.0.0.0/0"), ip("::1"))).toBe(false);
    expect(rangeContains(range("::/0"), ip("127.0.0.1"))).toBe(false);
    expect(rangeContains(range("::/0"), ip("::ffff:127.0.0.1"))).toBe(false);
  });

  it("checks the boundaries of an unaligned prefix", () => {
    const r = range("172.16.0.0/12");
    expect(rangeContains(r, ip("172.16.0.0"))).toBe(true);
    expect(rangeContains(r, ip("172.31.255.255"))).toBe(true);
    expect(rangeContains(r, ip("172.15.255.255"))).toBe(false);
    expect(rangeContains(r, ip("172.32.0.0"))).toBe(false);
  });
});

describe("classifyIp", () => {
  it.each<[string, IpClass]>([
    // metadata first, though link-local / unique-local / shared / reserved enclose them
    ["169.254.169.254", "metadata"],
    ["169.254.170.2", "metadata"],
    ["100.100.100.200", "metadata"],
    ["192.0.0.192", "metadata"],
    ["fd00:ec2::254", "metadata"],
    ["FD00:EC2:0:0:0:0:0:254", "metadata"],
    ["::ffff:169.254.169.254", "metadata"],
    ["169.254.169.253", "link-local"],
    ["169.254.169.255", "link-local"],
    ["fd00:ec2::253", "unique-local"],
    ["0.0.0.0", "unspecified"],
    ["0.255.255.255", "unspecified"],
    ["10.0.0.0", "private"],
    ["10.255.255.255", "private"],
    ["100.64.0.0", "shared"],
    ["100.127.255.255", "shared"],
    ["100.63.255.255", "public"],
    ["100.128.0.0", "public"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.255", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["169.254.0.0", "link-local"],
    ["169.254.255.255", "link-local"],
    ["172.16.0.0", "private"],
    ["172.31.255.255", "private"],
    ["172.15.255.255", "public"],
    ["172.32.0.0", "public"],
    ["192.168.0.1", "private"],
    ["::ffff:192.168.0.1", "private"],
    ["192.0.0.1", "reserved"],
    ["192.0.2.1", "reserved"],
    ["198.18.0.1", "reserved"],
    ["198.19.255.255", "reserved"],
    ["198.51.100.1", "reserved"],
    ["203.0.113.1", "reserved"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.255", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
    ["1.1.1.1", "public"],
    ["8.8.8.8", "public"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["fe80::1", "link-local"],
    ["febf:ffff::1", "link-local"],
    ["fc00::1", "unique-local"],
    ["fdff:ffff::1", "unique-local"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    ["64:ff9b::7f00:1", "reserved"],
    ["100::1", "reserved"],
    ["2606:4700:4700::1111", "public"],
    ["2001:4860:4860::8888", "public"],
  ])("%s is %s", (addr, cls) => {
    expect(classifyIp(ip(addr))).toBe(cls);
  });

  // ::/8 is reserved by the IETF. IPv4-compatible (::a.b.c.d, deprecated) and
  // IPv4-translated (::ffff:0:a.b.c.d) addresses embed a private IPv4 address; they were
  // classified "public", so a resolver answer ::127.0.0.1 passed the rebinding check.
  it.each([["::127.0.0.1"], ["::7f00:1"], ["::a9fe:a9fe"], ["::169.254.169.254"], ["::ffff:0:7f00:1"], ["::ffff:0:127.0.0.1"], ["::2"], ["ff::1"]])(
    "%s in ::/8 is reserved, not public",
    (addr) => {
      expect(classifyIp(ip(addr))).toBe("reserved");
    },
  );
});
