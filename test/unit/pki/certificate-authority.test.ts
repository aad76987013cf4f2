import { expect } from "chai";
import { X509Certificate, createPrivateKey } from "node:crypto";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
} from "../../../src/pki/certificate-authority.js";
import type { CertificateAuthorityProblem } from "../../../src/api/reasons.js";
import { thrownBy } from "../../support/errors.js";
import {
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
} from "../../../src/pki/offline-ca.js";
import { SoftwareSigningKey } from "../../../src/pki/signing-key.js";
import {
  makeTestCertificateAuthority,
  opensslVerify,
  type TestCertificateAuthority,
} from "../../support/pki.js";
import {
  buildTestCertificateRequest,
  createTestLeafCertificate,
  makeCertificateAuthorityUnderRenewedRoot,
  testKey,
} from "../../support/pki.js";

describe("loadCertificateAuthority", function () {
  this.timeout(30_000);
  let ca: TestCertificateAuthority;
  let other: TestCertificateAuthority;
  const now = () => new Date();
  before(async () => {
    ca = await makeTestCertificateAuthority({ name: "main" });
    other = await makeTestCertificateAuthority({ name: "other" });
  });

  it("loads Istio's cacerts layout: signing certificate, chain above it, anchor root", () => {
    const authority = loadCertificateAuthority(ca.files, now());
    expect(authority.layout).to.equal("cacerts");
    expect(authority.signingCertificate.fingerprintSha256).to.equal(
      ca.intermediate.certificate.fingerprintSha256,
    );
    expect(authority.intermediates).to.have.length(0);
    expect(authority.anchor.fingerprintSha256).to.equal(ca.root.certificate.fingerprintSha256);
    expect(authority.chainPem).to.equal(ca.intermediate.certificate.pem);
  });

  it("loads the kubernetes.io/tls layout (tls.crt, tls.key, ca.crt)", () => {
    const authority = loadCertificateAuthority(
      {
        "tls.crt": ca.files["ca-cert.pem"],
        "tls.key": ca.files["ca-key.pem"],
        "ca.crt": ca.files["root-cert.pem"],
      },
      now(),
    );
    expect(authority.layout).to.equal("kubernetes.io/tls");
    expect(authority.anchor.fingerprintSha256).to.equal(ca.root.certificate.fingerprintSha256);
  });

  it("accepts several roots in root-cert.pem (a rotation in progress) and finds the right anchor", () => {
    const files = {
      ...ca.files,
      "root-cert.pem": other.files["root-cert.pem"]! + ca.files["root-cert.pem"]!,
    };
    const authority = loadCertificateAuthority(files, now());
    expect(authority.roots).to.have.length(2);
    expect(authority.anchor.fingerprintSha256).to.equal(ca.root.certificate.fingerprintSha256);
  });

  describe("a renewed root (same key and subject) beside the old one: nothing depends on root-cert.pem's order", () => {
    const day = 86_400_000;
    let renewal: ReturnType<typeof makeCertificateAuthorityUnderRenewedRoot>;
    before(() => {
      renewal = makeCertificateAuthorityUnderRenewedRoot({
        shortRootDays: 10,
        longRootDays: 365,
        intermediateDays: 365,
      });
    });
    const files = (roots: string[], chainRoot: string | undefined) => ({
      "ca-cert.pem": renewal.intermediatePem,
      "ca-key.pem": renewal.intermediateKeyPem,
      "root-cert.pem": roots.join(""),
      "cert-chain.pem": renewal.intermediatePem + (chainRoot ?? ""),
    });

    for (const order of ["short root first", "long root first"] as const) {
      const roots = () =>
        order === "short root first"
          ? [renewal.shortRootPem, renewal.longRootPem]
          : [renewal.longRootPem, renewal.shortRootPem];

      it(`${order}, cert-chain.pem names the short root: capped at the short root's NotAfter, anchored at it`, () => {
        const authority = loadCertificateAuthority(files(roots(), renewal.shortRootPem), now());
        expect(authority.notAfter.toISOString()).to.equal(renewal.shortRootNotAfter.toISOString());
        expect(authority.anchor.pem).to.equal(renewal.shortRootPem);
      });

      it(`${order}, cert-chain.pem names the long root: anchored at it, still capped at the short root (a client may hold either)`, () => {
        const authority = loadCertificateAuthority(files(roots(), renewal.longRootPem), now());
        expect(authority.notAfter.toISOString()).to.equal(renewal.shortRootNotAfter.toISOString());
        expect(authority.anchor.pem).to.equal(renewal.longRootPem);
      });

      it(`${order}, no root in cert-chain.pem: anchored at the earliest-expiring root`, () => {
        const authority = loadCertificateAuthority(files(roots(), undefined), now());
        expect(authority.anchor.pem).to.equal(renewal.shortRootPem);
        expect(authority.notAfter.toISOString()).to.equal(renewal.shortRootNotAfter.toISOString());
      });

      it(`${order}, the short root expired: the renewal anchors and bounds, the expired root blocks nothing`, () => {
        const later = new Date(renewal.shortRootNotAfter.getTime() + day);
        const authority = loadCertificateAuthority(files(roots(), renewal.shortRootPem), later);
        expect(authority.anchor.pem).to.equal(renewal.longRootPem);
        expect(authority.notAfter.getTime()).to.equal(
          Math.min(
            renewal.longRootNotAfter.getTime(),
            new Date(new X509Certificate(renewal.intermediatePem).validTo).getTime(),
          ),
        );
      });
    }
  });

  it("walks a two-intermediate chain in any order in cert-chain.pem", async () => {
    const middle = await createIntermediateCertificateAuthority(ca.root, {
      subject: [{ type: "CN", value: "middle" }],
      lifetimeSeconds: 86400 * 30,
      keyType: "ecdsa-p256",
      pathLength: 1,
    });
    const issuing = await createIntermediateCertificateAuthority(middle, {
      subject: [{ type: "CN", value: "issuing" }],
      lifetimeSeconds: 86400 * 10,
      keyType: "ecdsa-p256",
    });
    const authority = loadCertificateAuthority(
      {
        "ca-cert.pem": issuing.certificate.pem,
        "ca-key.pem": issuing.keyPem,
        "root-cert.pem": ca.root.certificate.pem,
        "cert-chain.pem": ca.root.certificate.pem + middle.certificate.pem + issuing.certificate.pem,
      },
      now(),
    );
    expect(authority.intermediates.map((c) => c.subject)).to.deep.equal(["CN=middle"]);
    const leaf = await createTestLeafCertificate(authority);
    expect(opensslVerify(leaf, ca.root.certificate.pem)).to.match(/: OK/);
  });

  it("reads PKCS#8, SEC1 and PKCS#1 private keys", async () => {
    const sec1 = createPrivateKey(ca.files["ca-key.pem"]!).export({ format: "pem", type: "sec1" }).toString();
    expect(sec1).to.contain("BEGIN EC PRIVATE KEY");
    expect(() => loadCertificateAuthority({ ...ca.files, "ca-key.pem": sec1 }, now())).not.to.throw();
    const rsa = await makeTestCertificateAuthority({
      name: "rsa",
      rootKeyType: "rsa-2048",
      intermediateKeyType: "rsa-2048",
    });
    const pkcs1 = createPrivateKey(rsa.files["ca-key.pem"]!)
      .export({ format: "pem", type: "pkcs1" })
      .toString();
    expect(pkcs1).to.contain("BEGIN RSA PRIVATE KEY");
    expect(() => loadCertificateAuthority({ ...rsa.files, "ca-key.pem": pkcs1 }, now())).not.to.throw();
  });

  const refusals: [string, () => Record<string, string | undefined>, CertificateAuthorityProblem, RegExp][] =
    [
      [
        "a key that does not match the certificate",
        () => ({ ...ca.files, "ca-key.pem": other.files["ca-key.pem"] }),
        "KeyMismatch",
        /ca-key.pem does not match/,
      ],
      [
        "a chain that does not verify to any root",
        () => ({ ...ca.files, "root-cert.pem": other.files["root-cert.pem"] }),
        "ChainDoesNotVerify",
        /does not chain to a root in root-cert.pem/,
      ],
      [
        "a missing root-cert.pem",
        () => ({ ...ca.files, "root-cert.pem": undefined }),
        "MissingFile",
        /root-cert.pem is missing/,
      ],
      ["no known files at all", () => ({ "something.pem": "x" }), "UnknownLayout", /expected ca-cert.pem/],
      [
        "garbage in the key file",
        () => ({
          ...ca.files,
          "ca-key.pem": "-----BEGIN PRIVATE KEY-----\nSECRETSECRET\n-----END PRIVATE KEY-----\n",
        }),
        "MalformedKey",
        /not a PEM/,
      ],
      [
        "an encrypted key",
        () => ({
          ...ca.files,
          "ca-key.pem": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        }),
        "MalformedKey",
        /encrypted/,
      ],
    ];
  for (const [name, files, problem, message] of refusals) {
    it(`refuses ${name} (${problem})`, () => {
      const error = thrownBy(CertificateAuthorityError, () => loadCertificateAuthority(files(), now()));
      expect(error.reason).to.equal(problem);
      expect(error.message).to.match(message);
    });
  }

  it("never echoes key material in its errors", () => {
    const error = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority(
        {
          ...ca.files,
          "ca-key.pem":
            "-----BEGIN PRIVATE KEY-----\nTUlJQ2RnSUJBREFOQmdrcWhraUc5dzBC\n-----END PRIVATE KEY-----\n",
        },
        now(),
      ),
    );
    expect(error.message).not.to.contain("TUlJ");
    expect(JSON.stringify(SoftwareSigningKey.fromPem(ca.files["ca-key.pem"]!))).not.to.contain("PRIVATE");
  });

  it("refuses a leaf certificate posing as a CA, even with its matching key (NotACertificateAuthority)", async () => {
    const { issueLeafCertificate } = await import("../../../src/pki/issuance.js");
    const { parseCertificateRequest } = await import("../../../src/pki/certificate-request.js");
    const key = testKey("ecdsa-p256", true);
    const request = parseCertificateRequest(
      buildTestCertificateRequest({ key, subject: [{ type: "CN", value: "a leaf" }] }),
    );
    const issued = await issueLeafCertificate(ca.authority, request, {
      subject: [{ type: "CN", value: "a leaf" }],
      subjectAltNames: request.subjectAltNames,
      usages: ["digital signature"],
      lifetime: { defaultSeconds: 3600, maximumSeconds: 3600 },
      includeRoot: false,
    });
    const leafPem = issued.chainPem.slice(0, issued.chainPem.indexOf("-----END CERTIFICATE-----") + 26);
    const keyPem = key.export({ format: "pem", type: "pkcs8" }).toString();
    const error = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority({ ...ca.files, "ca-cert.pem": leafPem, "ca-key.pem": keyPem }, now()),
    );
    expect(error.reason).to.equal("NotACertificateAuthority");
    expect(error.message).to.match(/ca-cert.pem: "CN=a leaf" .* is not a CA/);
  });

  it("refuses expired and not-yet-valid material, naming the certificate", async () => {
    const past = new Date(Date.now() - 5 * 365 * 86400_000);
    const old = await makeTestCertificateAuthority({
      name: "old",
      intermediateLifetimeSeconds: 86400,
      environment: { now: () => past, randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)) },
    });
    const expired = thrownBy(CertificateAuthorityError, () => loadCertificateAuthority(old.files, now()));
    expect(expired.reason).to.equal("Expired");
    expect(expired.message).to.match(/"O=csr-signer tests, CN=old intermediate".*expired at/);
    const notYet = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority(ca.files, new Date(Date.now() - 86400_000)),
    );
    expect(notYet.reason).to.equal("NotYetValid");
  });

  it("refuses a CA certificate without keyCertSign", async () => {
    const root = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: "r" }],
      lifetimeSeconds: 86400,
      keyType: "ecdsa-p256",
    });
    // Re-sign the root's template without keyCertSign, using the builder directly.
    const { signCertificate, keyIdentifier } = await import("../../../src/pki/certificate-builder.js");
    const { parseCertificate } = await import("../../../src/pki/certificate.js");
    const spki = new Uint8Array(root.signingKey.publicKey.export({ format: "der", type: "spki" }));
    const der = await signCertificate(
      {
        serialNumber: Uint8Array.of(7),
        issuerName: root.certificate.subjectNameDer,
        subject: [{ type: "CN", value: "r" }],
        notBefore: root.certificate.notBefore,
        notAfter: root.certificate.notAfter,
        subjectPublicKeyInfo: spki,
        subjectKeyIdentifier: keyIdentifier(root.certificate.subjectPublicKey),
        subjectAltNames: { dns: [], ip: [], uri: [], email: [] },
        keyUsageBits: [0],
        extendedKeyUsageOids: [],
        basicConstraints: { ca: true },
      },
      root.signingKey,
    );
    const pem = parseCertificate(der).pem;
    const error = thrownBy(CertificateAuthorityError, () =>
      loadCertificateAuthority({ "tls.crt": pem, "tls.key": root.keyPem }, now()),
    );
    expect(error.reason).to.equal("NotACertificateAuthority");
    expect(error.message).to.contain("keyCertSign");
  });
});
