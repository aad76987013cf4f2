import { expect } from "chai";
import { missingSignerGrant, signerDomainWildcard } from "../../../src/kube/signer-grants.js";

describe("missingSignerGrant (pure)", () => {
  for (const verb of ["approve", "sign", "attest"] as const)
    it(`names verb ${verb} and the whole ClusterRole rule to add, and the restarting API server that also answers 403`, () => {
      expect(missingSignerGrant(verb, "example.com/foo")).to.equal(
        `RBAC missing, or the API server's authorizer still starting after a restart (then a retry passes): ` +
          `the controller needs verb ${verb} on certificates.k8s.io signers/example.com/foo; ` +
          `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ["signers"], ` +
          `resourceNames: ["example.com/foo"], verbs: ["${verb}"]}` +
          ` (or "example.com/*" in resourceNames for every signer name of that domain)`,
      );
    });
});

describe("signerDomainWildcard (pure)", () => {
  it("is the part before the first slash and /*, as the API server's wildcard check builds it", () => {
    expect(signerDomainWildcard("example.com/foo")).to.equal("example.com/*");
    expect(signerDomainWildcard("example.com/foo/bar")).to.equal("example.com/*");
  });
});
