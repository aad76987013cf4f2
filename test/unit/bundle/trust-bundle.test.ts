import { expect } from "chai";
import {
  clusterTrustBundleName,
  computeTrustBundle,
  publishedLongEnough,
  rootsFromPem,
} from "../../../src/bundle/trust-bundle.js";
import {
  createRootCertificateAuthority,
  type GeneratedCertificateAuthority,
} from "../../../src/pki/offline-ca.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

describe("computeTrustBundle", function () {
  this.timeout(20_000);
  let rootA: GeneratedCertificateAuthority;
  let rootB: GeneratedCertificateAuthority;
  const now = new Date();
  const hour = 3600;
  before(async () => {
    rootA = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: "A" }],
      lifetimeSeconds: 86400 * 365,
      keyType: "ecdsa-p256",
    });
    rootB = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: "B" }],
      lifetimeSeconds: 86400 * 365,
      keyType: "ecdsa-p256",
    });
  });

  it("holds each current root once, in a deterministic order whatever the input order", () => {
    const one = computeTrustBundle([rootB.certificate, rootA.certificate, rootA.certificate], [], now, hour);
    const two = computeTrustBundle([rootA.certificate, rootB.certificate], [], now, hour);
    expect(one.pem).to.equal(two.pem);
    expect(one.certificates).to.have.length(2);
    expect(one.recorded.map((r) => r.firstPublished)).to.deep.equal([undefined, undefined]); // not yet written anywhere
  });

  it("keeps a retired root for the overlap window, then drops it", () => {
    const first = computeTrustBundle([rootA.certificate], [], now, hour);
    const published = first.recorded.map((r) => ({ ...r, firstPublished: now.toISOString() }));
    const afterSwitch = computeTrustBundle([rootB.certificate], published, now, hour);
    expect(afterSwitch.certificates.map((c) => c.subject).sort()).to.deep.equal(["CN=A", "CN=B"]);
    const retired = afterSwitch.recorded.find((r) => r.subject === "CN=A")!;
    expect(retired.retiredAt).to.equal(now.toISOString().replace(/\.\d+Z$/, "Z"));
    expect(afterSwitch.nextChangeAt!.getTime()).to.equal(Date.parse(retired.retiredAt!) + hour * 1000);
    const later = new Date(now.getTime() + hour * 1000 + 1000);
    const afterOverlap = computeTrustBundle([rootB.certificate], afterSwitch.recorded, later, hour);
    expect(afterOverlap.certificates.map((c) => c.subject)).to.deep.equal(["CN=B"]);
    expect(afterOverlap.recorded.map((r) => r.subject)).to.deep.equal(["CN=B"]);
  });

  it("a root that comes back is current again, not retired", () => {
    const recorded = [
      {
        ...computeTrustBundle([rootA.certificate], [], now, hour).recorded[0]!,
        retiredAt: now.toISOString(),
      },
    ];
    expect(computeTrustBundle([rootA.certificate], recorded, now, hour).recorded[0]!.retiredAt).to.equal(
      undefined,
    );
  });

  it("takes only CA certificates, and counts publication time from firstPublished", async () => {
    const ca = await makeTestCertificateAuthority();
    expect(
      computeTrustBundle([ca.intermediate.certificate, ca.root.certificate], [], now, hour).certificates,
    ).to.have.length(2); // CAs both
    expect(rootsFromPem(ca.files["root-cert.pem"]!).map((c) => c.subject)).to.deep.equal([
      "O=csr-signer tests, CN=test root",
    ]);
    // An intermediate pasted as an extra root is named, not silently dropped.
    expect(() => rootsFromPem(ca.files["cert-chain.pem"]!)).to.throw(
      /certificate \[0\] "O=csr-signer tests, CN=test intermediate" is not a self-signed CA certificate/,
    );
    const recorded = [
      {
        fingerprintSha256: "f",
        subject: "s",
        notAfter: now.toISOString(),
        pem: "",
        firstPublished: new Date(now.getTime() - 60_000).toISOString(),
      },
    ];
    expect(publishedLongEnough(recorded, "f", now, 60)).to.equal(true);
    expect(publishedLongEnough(recorded, "f", now, 61)).to.equal(false);
    expect(publishedLongEnough([{ ...recorded[0]!, firstPublished: undefined }], "f", now, 0)).to.equal(
      false,
    );
  });

  it("names ClusterTrustBundles as the API requires", () => {
    expect(clusterTrustBundleName("example.com/foo")).to.equal("example.com:foo:csr-signer");
    expect(clusterTrustBundleName("clusterissuers.cert-manager.io/ns/foo")).to.equal(
      "clusterissuers.cert-manager.io:ns:foo:csr-signer",
    );
  });
});
