import { expect } from "chai";
import {
  compileKubeletServingSettings,
  KubeletServingSettingsError,
  type KubeletServingConfiguration,
} from "../../../src/policy/kubelet-serving-settings.js";

describe("compileKubeletServingSettings", () => {
  const refusals: [string, KubeletServingConfiguration, RegExp][] = [
    ["a malformed CIDR", { ipRanges: ["10.0.0.0/33"] }, /^--kubelet-serving-ip-ranges: "10.0.0.0\/33"/],
    [
      "a regular expression that does not compile",
      { dnsPatterns: ["n(["] },
      /^--kubelet-serving-dns-pattern: "n\(\["/,
    ],
    [
      "a DNS pattern with a backreference (the linear-time engine cannot run it)",
      { dnsPatterns: ["(n[0-9])\\1"] },
      /^--kubelet-serving-dns-pattern: "\(n\[0-9\]\)\\1" is not a regular expression that runs in linear time/,
    ],
    [
      "a DNS pattern with lookahead",
      { dnsPatterns: ["(?=n)[a-z0-9]+"] },
      /^--kubelet-serving-dns-pattern: .* linear time/,
    ],
    ["an empty DNS pattern", { dnsPatterns: [""] }, /^--kubelet-serving-dns-pattern/],
    [
      "an extra DNS name without {node} (every node would get it)",
      { extraDnsPatterns: ["shared.example.com"] },
      /^--kubelet-serving-extra-dns/,
    ],
    [
      "an extra DNS name that is no DNS name",
      { extraDnsPatterns: ["{node}..example.com"] },
      /^--kubelet-serving-extra-dns/,
    ],
    ["a cluster domain that is no DNS name", { clusterDomain: "cluster local" }, /^--cluster-domain/],
  ];
  for (const [name, configuration, message] of refusals) {
    it(`refuses ${name}, naming the setting`, () => {
      expect(() => compileKubeletServingSettings(configuration))
        .to.throw(KubeletServingSettingsError)
        .with.property("message")
        .match(message);
    });
  }
  it("anchors DNS patterns: n1|n2 is ^(?:n1|n2)$, not n1 or a name ending in n2", () => {
    const [pattern] = compileKubeletServingSettings({ dnsPatterns: ["n1|n2"] }).dnsPatterns;
    expect(["n1", "n2", "n1.evil", "evil.n2"].map((name) => pattern!.test(name))).to.deep.equal([
      true,
      true,
      false,
      false,
    ]);
  });

  it("compiles DNS patterns with the linear-time engine: the nested-quantifier ReDoS case ([a-z0-9]+-?)+ on 63 a's is decided", () => {
    const [pattern] = compileKubeletServingSettings({
      dnsPatterns: ["([a-z0-9]+-?)+\\.nodes\\.example\\.com"],
    }).dnsPatterns;
    // Not asserted through pattern.flags: once any test patches RegExp.prototype (pem.test.ts does), V8's
    // slow-path flags getter leaves out "l" although the engine stays linear. The refusal of
    // backreferences and lookahead above is what only the linear engine does.
    // Exponential with the backtracking engine (28 "a"s took 7 s, 63 never finish); linear here.
    expect(pattern!.test(`${"a".repeat(63)}.nodes.example.org`)).to.equal(false);
    expect(pattern!.test(`${"a-".repeat(120)}a.nodes.example.org`)).to.equal(false);
    expect(pattern!.test("ip-10-0-0-1.nodes.example.com")).to.equal(true);
  });
});
