import { expect } from "chai";
import {
  cachedPodCertificateRequest,
  isDecided,
  type PodCertificateRequestObject,
} from "../../../src/controller/pod-certificate-object.js";

const request: PodCertificateRequestObject = {
  metadata: {
    name: "web-0-abcde",
    namespace: "foo",
    uid: "u1",
    resourceVersion: "7",
    creationTimestamp: "2026-12-02T03:00:00Z",
    labels: { a: "b" },
    managedFields: [{ manager: "kubelet" }],
  } as PodCertificateRequestObject["metadata"],
  spec: {
    signerName: "example.com/foo",
    podName: "web-0",
    podUID: "p1",
    serviceAccountName: "web",
    serviceAccountUID: "s1",
    nodeName: "n1",
    nodeUID: "n1u",
    maxExpirationSeconds: 86400,
    pkixPublicKey: null,
    proofOfPossession: null,
    stubPKCS10Request: "c3R1Yg==",
    unverifiedUserAnnotations: Object.fromEntries(
      Array.from({ length: 8 }, (_, index) => [`example.com/k${index}`, "v".repeat(10_000)]),
    ),
  },
  status: {
    conditions: [{ type: "Issued", status: "True", reason: "Issued", message: "m".repeat(10_000) }],
    certificateChain: "-----BEGIN CERTIFICATE-----...",
    notAfter: "2026-12-03T03:00:00Z",
  },
};

describe("cachedPodCertificateRequest: what the PodCertificateRequest cache keeps", () => {
  it("keeps our undecided request's identity and key fields, the first annotation keys without values", () => {
    const { status: _, ...undecided } = request;
    const cached = cachedPodCertificateRequest(undecided, () => true);
    expect(cached).to.deep.equal({
      metadata: {
        name: "web-0-abcde",
        namespace: "foo",
        uid: "u1",
        resourceVersion: "7",
        creationTimestamp: "2026-12-02T03:00:00Z",
      },
      spec: {
        signerName: "example.com/foo",
        podName: "web-0",
        podUID: "p1",
        serviceAccountName: "web",
        serviceAccountUID: "s1",
        nodeName: "n1",
        nodeUID: "n1u",
        maxExpirationSeconds: 86400,
        pkixPublicKey: null,
        proofOfPossession: null,
        stubPKCS10Request: "c3R1Yg==",
        userAnnotationKeys: [
          "example.com/k0",
          "example.com/k1",
          "example.com/k2",
          "example.com/k3",
          "example.com/k4",
        ],
      },
    });
    expect(isDecided(cached)).to.equal(false);
  });

  it("drops the key fields of our request once it is decided, keeping the condition types (it is never signed again)", () => {
    const cached = cachedPodCertificateRequest(request, () => true);
    expect(cached.spec).to.not.have.any.keys("pkixPublicKey", "proofOfPossession", "stubPKCS10Request");
    expect(cached.spec?.keyOmitted).to.equal(true);
    expect(cached.spec?.podUID).to.equal("p1");
    expect(cached.status).to.deep.equal({ conditions: [{ type: "Issued", status: "True" }] });
    expect(isDecided(cached)).to.equal(true);
  });

  it("drops a foreign request's key fields, marking them omitted (read again should it become ours)", () => {
    const cached = cachedPodCertificateRequest(request, () => false);
    expect(cached.spec).to.not.have.any.keys("pkixPublicKey", "proofOfPossession", "stubPKCS10Request");
    expect(cached.spec?.keyOmitted).to.equal(true);
    expect(JSON.stringify(cached).length).to.be.below(1024);
  });

  it("counts only True Issued, Denied and Failed conditions as decided", () => {
    expect(isDecided({})).to.equal(false);
    expect(isDecided({ status: { conditions: [{ type: "Denied", status: "False" }] } })).to.equal(false);
    expect(isDecided({ status: { conditions: [{ type: "Failed", status: "True" }] } })).to.equal(true);
  });
});
