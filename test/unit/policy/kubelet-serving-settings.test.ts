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
});
