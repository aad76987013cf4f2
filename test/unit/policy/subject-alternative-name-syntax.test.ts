import { expect } from "chai";
import { noSubjectAlternativeNames } from "../../../src/pki/subject-alternative-names.js";
import {
  isDnsNameSyntax,
  subjectAltNameSyntaxProblem,
} from "../../../src/policy/subject-alternative-name-syntax.js";

describe("subjectAltNameSyntaxProblem: malformed SANs whatever the policy", () => {
  for (const [what, names, reason] of [
    ["two @ in an email", { email: ["a@evil.com@allowed.com"] }, "InvalidEmailAddress"],
    ["a quoted local part", { email: ['"x@evil.com"@allowed.com'] }, "InvalidEmailAddress"],
    ["a second wildcard label", { dns: ["*.*.com"] }, "InvalidDnsName"],
    ["a leading hyphen and an empty label", { dns: ["-a..b"] }, "InvalidDnsName"],
    ["a single label", { dns: ["localhost"] }, "InvalidDnsName"],
    ["an IPv4-mapped IPv6 address", { ip: ["::ffff:10.96.0.1"] }, "InvalidIpAddress"],
    ["an IPv4-mapped IPv6 address in hex form", { ip: ["::ffff:a60:1"] }, "InvalidIpAddress"],
  ] as const) {
    it(`refuses ${what} (${reason})`, () => {
      const problem = subjectAltNameSyntaxProblem({ ...noSubjectAlternativeNames, ...names });
      expect(problem?.reason).to.equal(reason);
    });
  }

  it("names the rule and the address TLS clients would see for an IPv4-mapped address", () => {
    expect(subjectAltNameSyntaxProblem({ ...noSubjectAlternativeNames, ip: ["::ffff:10.96.0.1"] })?.message)
      .to.contain("::ffff:0:0/96")
      .and.to.contain("10.96.0.1");
  });

  it("accepts well-formed names: a whole left-most wildcard, any case, IPv4, IPv6 (also ::1 and the IPv4-compatible ::a60:1), a plain mailbox", () => {
    expect(
      subjectAltNameSyntaxProblem({
        dns: ["*.example.com", "Web.Example.COM", "a-b.c"],
        ip: ["10.96.0.1", "2001:db8::1", "::1", "::a60:1", "::fffe:a60:1"],
        uri: ["anything: URIs are the policy's business"],
        email: ["first.last+tag@Example.com"],
      }),
    ).to.equal(undefined);
  });

  it("limits a DNS name to 253 characters", () => {
    const label = "a".repeat(63);
    expect(isDnsNameSyntax([label, label, label, "a".repeat(61)].join("."))).to.equal(true); // 253
    expect(isDnsNameSyntax([label, label, label, "a".repeat(62)].join("."))).to.equal(false); // 254
  });
});
