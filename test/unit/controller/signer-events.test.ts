import { expect } from "chai";
import { signerStatusEvents } from "../../../src/controller/signer-events.js";
import type { SignerCondition, SignerStatus } from "../../../src/api/signer.js";

const at = "2026-06-01T12:00:00Z";
const condition = (type: string, status: string, reason: string, message = ""): SignerCondition => ({
  type,
  status: status as SignerCondition["status"],
  reason: reason as SignerCondition["reason"],
  message,
  lastTransitionTime: at,
});
const healthy = [condition("Ready", "True", "Ready"), condition("Degraded", "False", "AsExpected")];
const ca = (fingerprint: string, subject = `CN=${fingerprint}`) => ({
  subject,
  notAfter: "2027-01-01T00:00:00Z",
  fingerprintSha256: fingerprint,
  issuer: "CN=root",
  roots: [],
});
const root = (fingerprint: string, extra: Record<string, string> = {}) => ({
  fingerprintSha256: fingerprint,
  subject: `CN=${fingerprint}`,
  notAfter: "2030-01-01T00:00:00Z",
  pem: "",
  ...extra,
});
const reasons = (before: SignerStatus, after: SignerStatus) =>
  signerStatusEvents(before, after).map((event) => [event.type, event.reason]);

describe("signerStatusEvents (pure): Events for what changed a Signer", () => {
  it("a first CA: CertificateAuthorityLoaded; a healthy first status says nothing more", () => {
    const events = signerStatusEvents({}, { conditions: healthy, certificateAuthority: ca("aa") });
    expect(events).to.deep.equal([
      {
        type: "Normal",
        reason: "CertificateAuthorityLoaded",
        message: "signing with CN=aa (sha256 aa, valid until 2027-01-01T00:00:00Z)",
      },
    ]);
  });

  it("another signing certificate: CertificateAuthorityRotated naming both; the same one: nothing", () => {
    const before = { conditions: healthy, certificateAuthority: ca("aa") };
    const [rotated, ...rest] = signerStatusEvents(before, { ...before, certificateAuthority: ca("bb") });
    expect(rest).to.deep.equal([]);
    expect(rotated).to.include({ type: "Normal", reason: "CertificateAuthorityRotated" });
    expect(rotated!.message).to.contain("now signing with CN=bb").and.to.contain("was CN=aa (sha256 aa)");
    expect(signerStatusEvents(before, { ...before, issuedCount: 5 })).to.deep.equal([]);
  });

  it("a refused CA update (Degraded=True): a Warning with the condition's reason and message, once", () => {
    const refused = [
      condition("Ready", "True", "Ready"),
      condition(
        "Degraded",
        "True",
        "CertificateAuthorityKeyMismatch",
        "update not used, still signing with the previous CA: key does not match",
      ),
    ];
    const before = { conditions: healthy, certificateAuthority: ca("aa") };
    const after = { conditions: refused, certificateAuthority: ca("aa") };
    expect(signerStatusEvents(before, after)).to.deep.equal([
      {
        type: "Warning",
        reason: "CertificateAuthorityKeyMismatch",
        message: "Degraded=True: update not used, still signing with the previous CA: key does not match",
      },
    ]);
    expect(signerStatusEvents(after, { ...after, issuedCount: 1 })).to.deep.equal([]);
    expect(reasons(after, before)).to.deep.equal([["Normal", "Recovered"]]);
  });

  it("Ready going False (and changing reason while False) is a Warning; back to True is Recovered", () => {
    const notReady = (reason: string) => ({
      conditions: [condition("Ready", "False", reason, "why"), condition("Degraded", "False", "AsExpected")],
    });
    expect(reasons({}, notReady("CertificateAuthorityMissing"))).to.deep.equal([
      ["Warning", "CertificateAuthorityMissing"],
    ]);
    expect(
      reasons(notReady("CertificateAuthorityMissing"), notReady("TrustBundlePublicationFailed")),
    ).to.deep.equal([["Warning", "TrustBundlePublicationFailed"]]);
    expect(reasons(notReady("TrustBundlePublicationFailed"), { conditions: healthy })).to.deep.equal([
      ["Normal", "Recovered"],
    ]);
  });

  it("a moment of RootNotYetPublished (every new root waits for its first publication) is no Warning", () => {
    const waiting = {
      conditions: [condition("Ready", "False", "RootNotYetPublished", "root must be published")],
    };
    expect(reasons({}, waiting)).to.deep.equal([]);
    // Recovered still: the wait may have followed a real problem (a refused update, then a good one).
    expect(reasons(waiting, { conditions: healthy })).to.deep.equal([["Normal", "Recovered"]]);
    expect(
      reasons(waiting, { conditions: [condition("Ready", "False", "TrustBundlePublicationFailed")] }),
    ).to.deep.equal([["Warning", "TrustBundlePublicationFailed"]]);
  });

  it("a root newly published: RootPublished; newly retired: RootRetired; recorded before: nothing", () => {
    const before = { trustBundle: { roots: [root("old", { firstPublished: at }), root("new")] } };
    const after = {
      trustBundle: {
        roots: [root("old", { firstPublished: at, retiredAt: at }), root("new", { firstPublished: at })],
      },
    };
    expect(reasons(before, after)).to.deep.equal([
      ["Normal", "RootRetired"],
      ["Normal", "RootPublished"],
    ]);
    expect(reasons(after, after)).to.deep.equal([]);
    // Status that does not write roots (the field left out) announces nothing about them.
    expect(reasons(before, {})).to.deep.equal([]);
  });
});
