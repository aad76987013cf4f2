/**
 * Roots cannot grow without bound when a tenant writes the CA Secret: at most 4 roots per material
 * (8 chain certificates), at most 16 recorded roots per Signer (new material waits, with
 * TooManyRecordedRoots, until retired roots leave), and retiring roots parsed once, not on every
 * rebuild.
 */
import { expect } from "chai";
import type { RecordedRoot, SignerObject } from "../../../src/api/signer.js";
import { computeTrustBundle } from "../../../src/bundle/trust-bundle.js";
import type { CertificateAuthoritySelector } from "../../../src/controller/authority-selector.js";
import { RecordedRootsBook } from "../../../src/controller/recorded-roots.js";
import { buildActiveSigner, maximumRecordedRoots } from "../../../src/controller/signer-builder.js";
import { kubernetesTime } from "../../../src/kube/time.js";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
  maximumChainCertificates,
  maximumRootsPerCertificateAuthority,
  type CertificateAuthority,
} from "../../../src/pki/certificate-authority.js";
import { CacertsFiles } from "../../../src/pki/ca-layouts.js";
import {
  createRootCertificateAuthority,
  type GeneratedCertificateAuthority,
} from "../../../src/pki/offline-ca.js";
import { thrownBy } from "../../support/errors.js";
import { makeTestCertificateAuthority, type TestCertificateAuthority } from "../../support/pki.js";

describe("root limits", function () {
  this.timeout(30_000);
  const now = new Date();
  let ca: TestCertificateAuthority;
  let pendingCa: TestCertificateAuthority;
  let others: GeneratedCertificateAuthority[];
  before(async () => {
    ca = await makeTestCertificateAuthority({ name: "current" });
    pendingCa = await makeTestCertificateAuthority({ name: "pending" });
    others = await Promise.all(
      Array.from({ length: maximumRecordedRoots }, (_, index) =>
        createRootCertificateAuthority({
          subject: [{ type: "CN", value: `retired ${index}` }],
          lifetimeSeconds: 86400 * 365,
          keyType: "ecdsa-p256",
        }),
      ),
    );
  });

  it("caps roots per CA material at 4 and chain certificates at 8, counted before parsing", () => {
    expect(maximumRootsPerCertificateAuthority).to.equal(4);
    const root = ca.files[CacertsFiles.roots]!;
    const four = loadCertificateAuthority({ ...ca.files, [CacertsFiles.roots]: root.repeat(4) }, now);
    expect(four.roots).to.have.length(4);
    const tooMany = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority({ ...ca.files, [CacertsFiles.roots]: root.repeat(5) }, now),
    );
    expect(tooMany.reason).to.equal("TooManyCertificates");
    expect(tooMany.message).to.equal("root-cert.pem holds 5 certificates; at most 4 are accepted");
    const chain = ca.files[CacertsFiles.chain] ?? ca.files[CacertsFiles.certificate]!;
    const longChain = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority(
        { ...ca.files, [CacertsFiles.chain]: chain.repeat(maximumChainCertificates + 1) },
        now,
      ),
    );
    expect(longChain.reason).to.equal("TooManyCertificates");
    expect(longChain.message).to.match(/^cert-chain\.pem holds \d+ certificates; at most 8 are accepted$/);
  });

  it("a retiring root is parsed once, not on every rebuild", () => {
    const [entry] = computeTrustBundle([others[0]!.certificate], [], now, 3600).recorded;
    const retired = [{ ...entry!, firstPublished: kubernetesTime(now), retiredAt: kubernetesTime(now) }];
    const first = computeTrustBundle([], retired, now, 3600);
    const second = computeTrustBundle([], retired, now, 3600);
    expect(first.certificates).to.have.length(1);
    expect(second.certificates[0]).to.equal(first.certificates[0]);
  });

  function signerObject(): SignerObject {
    return {
      metadata: { name: "limits", generation: 1 },
      spec: {
        signerName: "example.com/limits",
        certificateAuthority: { secretName: "cacerts" },
        issuance: { defaultDuration: "1h", maxDuration: "1h" },
        policy: { requesters: { users: ["a"] } },
      },
    };
  }

  function selector(
    authority: CertificateAuthority,
    pending: CertificateAuthority,
  ): CertificateAuthoritySelector {
    return {
      select: () => ({
        authority,
        pending,
        degraded: { reason: "RootNotYetPublished", message: "the new root is not yet published" },
      }),
    } as unknown as CertificateAuthoritySelector;
  }

  function retiredEntries(count: number): RecordedRoot[] {
    return others.slice(0, count).map((root) => ({
      ...computeTrustBundle([root.certificate], [], now, 3600).recorded[0]!,
      firstPublished: kubernetesTime(now),
      retiredAt: kubernetesTime(now),
    }));
  }

  it(`new material's roots wait (Degraded TooManyRecordedRoots) while the Signer records ${maximumRecordedRoots}; the CA signing goes on`, () => {
    const book = new RecordedRootsBook();
    const current = computeTrustBundle(ca.authority.roots, [], now, 3600).recorded.map((entry) => ({
      ...entry,
      firstPublished: kubernetesTime(now),
    }));
    book.set("limits", [...current, ...retiredEntries(maximumRecordedRoots - current.length)]);
    const signer = buildActiveSigner(signerObject(), selector(ca.authority, pendingCa.authority), book, now);
    expect(signer.authority).to.equal(ca.authority);
    expect(signer.degraded?.reason).to.equal("TooManyRecordedRoots");
    expect(signer.degraded?.message).to.equal(
      `the new CA material's 1 roots are not published: this Signer would record ${maximumRecordedRoots + 1} roots and at most ${maximumRecordedRoots} are kept (retired roots leave after spec.trustBundle.overlap)`,
    );
    const pendingRoot = pendingCa.authority.anchor.fingerprintSha256;
    expect(signer.bundle!.certificates.map((c) => c.fingerprintSha256)).not.to.include(pendingRoot);
    expect(signer.bundle!.recorded).to.have.length(maximumRecordedRoots);
  });

  it("below the cap the new material's roots are published as before", () => {
    const book = new RecordedRootsBook();
    book.set("limits", retiredEntries(3));
    const signer = buildActiveSigner(signerObject(), selector(ca.authority, pendingCa.authority), book, now);
    expect(signer.degraded?.reason).to.equal("RootNotYetPublished");
    expect(signer.bundle!.certificates.map((c) => c.fingerprintSha256)).to.include(
      pendingCa.authority.anchor.fingerprintSha256,
    );
  });
});
