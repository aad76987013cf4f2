import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import fc from "fast-check";
import { parseCertificateRequest } from "../../../src/pki/certificate-request.js";
import { issueLeafCertificate, type IssuanceGrant } from "../../../src/pki/issuance.js";
import { Oid } from "../../../src/pki/oids.js";
import { kubernetesUsages, type KubernetesUsage } from "../../../src/api/usages.js";
import {
  buildTestCertificateRequest,
  caTrueExtension,
  makeCertificateAuthorityOutlivingItsRoot,
  makeTestCertificateAuthority,
  opensslRequest,
  opensslText,
  opensslVerify,
  testKey,
  type TestCertificateAuthority,
} from "../../support/pki.js";
import { readWithPkijs } from "../../support/pkijs-oracle.js";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
  type CertificateAuthority,
} from "../../../src/pki/certificate-authority.js";
import { createRootCertificateAuthority } from "../../../src/pki/offline-ca.js";
import { parseSignerSpec } from "../../../src/policy/signer-spec.js";
import { evaluateSigningRequest } from "../../../src/policy/signing-policy.js";

const istioUsages: KubernetesUsage[] = [
  "digital signature",
  "key encipherment",
  "server auth",
  "client auth",
];
const day = 86400;

function grant(overrides: Partial<IssuanceGrant> = {}): IssuanceGrant {
  return {
    subject: [],
    subjectAltNames: { dns: [], ip: [], uri: [], email: [] },
    usages: istioUsages,
    lifetime: { defaultSeconds: day, maximumSeconds: 7 * day },
    includeRoot: false,
    ...overrides,
  };
}

describe("issueLeafCertificate", function () {
  this.timeout(60_000);
  let ecCa: TestCertificateAuthority;
  let rsaCa: TestCertificateAuthority;
  before(async () => {
    ecCa = await makeTestCertificateAuthority({
      name: "ec",
      rootKeyType: "ecdsa-p384",
      intermediateKeyType: "ecdsa-p256",
    });
    rsaCa = await makeTestCertificateAuthority({
      name: "rsa",
      rootKeyType: "rsa-2048",
      intermediateKeyType: "rsa-2048",
    });
  });

  describe("cross-checked with openssl verify and openssl x509 -text", () => {
    for (const caName of ["ECDSA", "RSA"] as const) {
      for (const keyName of ["ec", "rsa"] as const) {
        it(`${caName} CA, ${keyName.toUpperCase()} request: Istio SPIFFE shape with O=""`, async () => {
          const ca = caName === "ECDSA" ? ecCa : rsaCa;
          const request = parseCertificateRequest(
            buildTestCertificateRequest({
              key: testKey(keyName === "ec" ? "ecdsa-p256" : "rsa-2048"),
              subject: [{ type: "O", value: "" }],
              subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/default"] },
            }),
          );
          const issued = await issueLeafCertificate(
            ca.authority,
            request,
            grant({ subjectAltNames: request.subjectAltNames }),
          );
          expect(
            opensslVerify(issued.chainPem, ca.files["root-cert.pem"]!, ["-purpose", "sslserver"]),
          ).to.match(/: OK/);
          expect(
            opensslVerify(issued.chainPem, ca.files["root-cert.pem"]!, ["-purpose", "sslclient"]),
          ).to.match(/: OK/);
          const text = opensslText(issued.chainPem);
          expect(text).to.match(/Subject: *\n/);
          expect(text).to.match(
            /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster.local\/ns\/foo\/sa\/default/,
          );
          expect(text).to.match(/X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
          expect(text).to.match(/X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment/);
          expect(text).to.contain(
            caName === "ECDSA"
              ? "Signature Algorithm: ecdsa-with-SHA256"
              : "Signature Algorithm: sha256WithRSAEncryption",
          );
        });
      }
    }

    it("empty-subject request from the openssl CLI with DNS and IP SANs (SAN critical)", async () => {
      const { csrPem } = opensslRequest("ec", "/", ["subjectAltName=DNS:api.foo.svc,IP:10.0.0.7"]);
      const request = parseCertificateRequest(csrPem);
      const issued = await issueLeafCertificate(
        ecCa.authority,
        request,
        grant({ subjectAltNames: request.subjectAltNames, usages: ["digital signature", "server auth"] }),
      );
      expect(
        opensslVerify(issued.chainPem, ecCa.files["root-cert.pem"]!, ["-purpose", "sslserver"]),
      ).to.match(/: OK/);
      const text = opensslText(issued.chainPem);
      expect(text).to.match(/Subject Alternative Name: critical\n\s+DNS:api.foo.svc, IP Address:10.0.0.7/);
      expect(text).not.to.contain("TLS Web Client Authentication");
    });

    it("a subject from the template keeps the SAN extension non-critical", async () => {
      const request = parseCertificateRequest(
        buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["a.example"] } }),
      );
      const issued = await issueLeafCertificate(
        ecCa.authority,
        request,
        grant({ subject: [{ type: "CN", value: "a.example" }], subjectAltNames: request.subjectAltNames }),
      );
      expect(opensslText(issued.chainPem)).to.match(
        /Subject: CN ?= ?a.example[\s\S]*X509v3 Subject Alternative Name: \n/,
      );
    });

    it("a 30-year root: leaves verify, and dates from 2050 on are GeneralizedTime", async () => {
      const longRoot = await createRootCertificateAuthority({
        subject: [{ type: "CN", value: "30 year root" }],
        lifetimeSeconds: 30 * 365 * day,
        keyType: "ecdsa-p256",
      });
      const { loadCertificateAuthority } = await import("../../../src/pki/certificate-authority.js");
      const authority = loadCertificateAuthority(
        { "tls.crt": longRoot.certificate.pem, "tls.key": longRoot.keyPem },
        new Date(),
      );
      expect(longRoot.certificate.notAfter.getUTCFullYear()).to.be.greaterThan(2050);
      expect(opensslText(longRoot.certificate.pem)).to.match(/Not After : \w+ +\d+ [\d:]+ 205\d GMT/);
      const request = parseCertificateRequest(
        buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["x.example"] } }),
      );
      const issued = await issueLeafCertificate(
        authority,
        request,
        grant({ subjectAltNames: request.subjectAltNames, includeRoot: false }),
      );
      expect(issued.chainPem.match(/BEGIN CERTIFICATE/g)).to.have.length(1); // self-signed CA: the leaf alone
      expect(opensslVerify(issued.chainPem, longRoot.certificate.pem)).to.match(/: OK/);
    });

    it("a P-384 CA signs with SHA-384", async () => {
      const p384 = await makeTestCertificateAuthority({
        name: "p384",
        rootKeyType: "ecdsa-p384",
        intermediateKeyType: "ecdsa-p384",
      });
      const request = parseCertificateRequest(
        buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["x.example"] } }),
      );
      const issued = await issueLeafCertificate(
        p384.authority,
        request,
        grant({ subjectAltNames: request.subjectAltNames }),
      );
      expect(opensslText(issued.chainPem)).to.contain("Signature Algorithm: ecdsa-with-SHA384");
      expect(opensslVerify(issued.chainPem, p384.files["root-cert.pem"]!)).to.match(/: OK/);
    });
  });

  it("writes leaf then intermediate, PEM blocks only; the root only when asked", async () => {
    const request = parseCertificateRequest(
      buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["x.example"] } }),
    );
    const without = await issueLeafCertificate(
      ecCa.authority,
      request,
      grant({ subjectAltNames: request.subjectAltNames }),
    );
    const blocks = without.chainPem.match(
      /-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n/g,
    )!;
    expect(blocks.join("")).to.equal(without.chainPem);
    expect(blocks).to.have.length(2);
    expect(new X509Certificate(blocks[1]!).fingerprint256).to.equal(
      ecCa.intermediate.certificate.fingerprintSha256,
    );
    const withRoot = await issueLeafCertificate(
      ecCa.authority,
      request,
      grant({ subjectAltNames: request.subjectAltNames, includeRoot: true }),
    );
    const rootBlock = withRoot.chainPem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g,
    )![2]!;
    expect(new X509Certificate(rootBlock).fingerprint256).to.equal(ecCa.root.certificate.fingerprintSha256);
  });

  it("never copies requested extensions: a CA:TRUE request yields CA:FALSE and only granted SANs", async () => {
    const request = parseCertificateRequest(
      buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subjectAltNames: { dns: ["asked.example", "evil.example"] },
        extraExtensions: [caTrueExtension],
      }),
    );
    const issued = await issueLeafCertificate(
      ecCa.authority,
      request,
      grant({ subjectAltNames: { dns: ["asked.example"], ip: [], uri: [], email: [] } }),
    );
    const seen = readWithPkijs(issued.certificateDer);
    expect(seen.basicConstraints).to.deep.equal({ ca: false });
    expect(seen.subjectAltNames.dns).to.deep.equal(["asked.example"]);
    expect(seen.keyUsageBits).not.to.include(5);
  });

  it("clamps the lifetime to [10 min, signer maximum] and to the issuer's NotAfter; backdates NotBefore 5 minutes", async () => {
    // A clock one day (and half a second) into the CA's life: far from its edges whatever the wall clock says.
    const caStart = ecCa.intermediate.certificate.notBefore.getTime();
    const nowSecond = caStart + day * 1000;
    const now = new Date(nowSecond + 500);
    const environment = { now: () => now, randomBytes: (n: number) => new Uint8Array(n).fill(0x42) };
    const request = parseCertificateRequest(
      buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["x.example"] } }),
    );
    const lifetime = async (requestedSeconds: number | undefined) => {
      const issued = await issueLeafCertificate(
        ecCa.authority,
        request,
        grant({
          subjectAltNames: request.subjectAltNames,
          lifetime: { requestedSeconds, defaultSeconds: day, maximumSeconds: 7 * day },
        }),
        environment,
      );
      expect(issued.notBefore.getTime()).to.equal(nowSecond - 300_000);
      return (issued.notAfter.getTime() - nowSecond) / 1000;
    };
    expect(await lifetime(undefined)).to.equal(day);
    expect(await lifetime(60)).to.equal(600);
    expect(await lifetime(3600)).to.equal(3600);
    expect(await lifetime(10 * 365 * day)).to.equal(7 * day); // istiod's 10-year request
    const nearEnd = new Date(ecCa.intermediate.certificate.notAfter.getTime() - 3600_000);
    const late = await issueLeafCertificate(
      ecCa.authority,
      request,
      grant({ subjectAltNames: request.subjectAltNames }),
      { now: () => nearEnd, randomBytes: environment.randomBytes },
    );
    expect(late.notAfter.getTime()).to.equal(ecCa.intermediate.certificate.notAfter.getTime());
  });

  it("never backdates NotBefore before the issuer's NotBefore (a CA minutes old)", async () => {
    const caStart = ecCa.intermediate.certificate.notBefore.getTime();
    const request = parseCertificateRequest(buildTestCertificateRequest({ key: testKey("ecdsa-p256") }));
    const issued = await issueLeafCertificate(ecCa.authority, request, grant(), {
      now: () => new Date(caStart + 60_000),
      randomBytes: (n) => new Uint8Array(n).fill(1),
    });
    expect(issued.notBefore.getTime()).to.equal(caStart);
  });

  it("refuses to issue from an expired signing certificate", async () => {
    const request = parseCertificateRequest(buildTestCertificateRequest({ key: testKey("ecdsa-p256") }));
    const after = new Date(ecCa.intermediate.certificate.notAfter.getTime() + 1000);
    let error: unknown;
    try {
      await issueLeafCertificate(ecCa.authority, request, grant(), {
        now: () => after,
        randomBytes: (n) => new Uint8Array(n).fill(1),
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).to.have.property("reason", "Expired");
  });

  describe("an intermediate valid 1 year under a root valid 10 days (leaves outlived the root by 20 days)", () => {
    let outliving: Awaited<ReturnType<typeof makeCertificateAuthorityOutlivingItsRoot>>;
    let authority: CertificateAuthority;
    before(async () => {
      outliving = await makeCertificateAuthorityOutlivingItsRoot({
        rootLifetimeSeconds: 10 * day,
        intermediateLifetimeDays: 365,
      });
      authority = loadCertificateAuthority(outliving.files, new Date());
    });

    it("caps a 30-day leaf at the root's NotAfter; openssl verifies the chain at the leaf's last second", async () => {
      expect(outliving.intermediateNotAfter.getTime()).to.be.greaterThan(outliving.rootNotAfter.getTime());
      const request = parseCertificateRequest(
        buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["x.example"] } }),
      );
      const issued = await issueLeafCertificate(
        authority,
        request,
        grant({
          subjectAltNames: request.subjectAltNames,
          lifetime: { requestedSeconds: 30 * day, defaultSeconds: day, maximumSeconds: 30 * day },
          includeRoot: true,
        }),
      );
      expect(issued.notAfter.toISOString()).to.equal(outliving.rootNotAfter.toISOString());
      const lastSecond = String(Math.floor(issued.notAfter.getTime() / 1000) - 1);
      expect(
        opensslVerify(issued.chainPem, outliving.files["root-cert.pem"]!, ["-attime", lastSecond]),
      ).to.match(/: OK/);
    });

    describe("the chain's last 10 minutes (a leaf got down to under a second)", () => {
      const request = () =>
        parseCertificateRequest(
          buildTestCertificateRequest({
            key: testKey("ecdsa-p256"),
            subjectAltNames: { dns: ["x.example"] },
          }),
        );
      const issueAt = (now: Date) =>
        issueLeafCertificate(
          authority,
          request(),
          grant({ subjectAltNames: { dns: ["x.example"], ip: [], uri: [], email: [] } }),
          { now: () => now, randomBytes: (n) => new Uint8Array(n).fill(1) },
        );
      for (const [what, beforeEndMs] of [
        ["1 s", 1000],
        ["999 ms", 999],
        ["599.999 s", 599_999],
      ] as const) {
        it(`refuses ${what} before the root expires (CertificateAuthorityExpiringSoon: shorter than the 600 s minimum)`, async () => {
          let error: unknown;
          try {
            await issueAt(new Date(outliving.rootNotAfter.getTime() - beforeEndMs));
          } catch (caught) {
            error = caught;
          }
          expect(error).to.be.instanceOf(CertificateAuthorityError);
          expect(error).to.have.property("reason", "ExpiringSoon");
          expect((error as Error).message)
            .to.contain(outliving.rootNotAfter.toISOString())
            .and.to.contain("600s");
        });
      }

      it("issues exactly 600 s before the root expires, a leaf of 600 s ending at the root's NotAfter", async () => {
        const now = new Date(outliving.rootNotAfter.getTime() - 600_000);
        const issued = await issueAt(now);
        expect(issued.notAfter.toISOString()).to.equal(outliving.rootNotAfter.toISOString());
        expect(issued.notAfter.getTime() - now.getTime()).to.equal(600_000);
      });
    });

    it("refuses to issue once the root has expired, though the signing certificate has not (Expired)", async () => {
      const request = parseCertificateRequest(buildTestCertificateRequest({ key: testKey("ecdsa-p256") }));
      const afterRoot = new Date(outliving.rootNotAfter.getTime() + 1000);
      let error: unknown;
      try {
        await issueLeafCertificate(authority, request, grant(), {
          now: () => afterRoot,
          randomBytes: (n) => new Uint8Array(n).fill(1),
        });
      } catch (caught) {
        error = caught;
      }
      expect(error).to.have.property("reason", "Expired");
    });
  });

  it("serials are 128 random bits, positive and minimal DER, even with the top bit set", async () => {
    const request = parseCertificateRequest(buildTestCertificateRequest({ key: testKey("ecdsa-p256") }));
    const issued = await issueLeafCertificate(ecCa.authority, request, grant(), {
      now: () => new Date(),
      randomBytes: (n) => new Uint8Array(n).fill(0xff),
    });
    expect(new X509Certificate(issued.certificateDer).serialNumber).to.equal("FF".repeat(16));
    expect([...readWithPkijs(issued.certificateDer).serialNumber]).to.deep.equal([
      0,
      ...new Array(16).fill(0xff),
    ]);
    expect(opensslText(issued.chainPem)).to.contain("ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff:ff");
  });

  describe("property: an issued certificate says exactly what the grant allowed", () => {
    const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
    const dnsName = fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => labels.join("."));
    const ipv4 = fc.ipV4();
    const uri = fc.tuple(label, label).map(([ns, sa]) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`);
    const grantArbitrary = fc.record({
      dns: fc.uniqueArray(dnsName, { maxLength: 4 }),
      ip: fc.uniqueArray(ipv4, { maxLength: 3 }),
      uri: fc.uniqueArray(uri, { maxLength: 2 }),
      usages: fc.subarray(
        kubernetesUsages.filter((u) => u !== "cert sign" && u !== "crl sign") as KubernetesUsage[],
      ),
      requestedSeconds: fc.option(fc.integer({ min: 1, max: 20 * 365 * day }), { nil: undefined }),
      maximumSeconds: fc.integer({ min: 600, max: 365 * day }),
      withCommonName: fc.boolean(),
      requestExtras: fc.boolean(),
    });

    it("over 150 generated requests and grants (re-parsed with pkijs and node:crypto)", async () => {
      await fc.assert(
        fc.asyncProperty(grantArbitrary, async (g) => {
          const request = parseCertificateRequest(
            buildTestCertificateRequest({
              key: testKey("ecdsa-p256"),
              subject: g.withCommonName ? [{ type: "CN", value: "requested" }] : [],
              subjectAltNames: { dns: ["not-granted.example", ...g.dns], uri: g.uri },
              extraExtensions: g.requestExtras ? [caTrueExtension] : [],
            }),
          );
          const subject = g.withCommonName ? [{ type: "CN", value: "granted" }] : [];
          const subjectAltNames = { dns: g.dns, ip: g.ip, uri: g.uri, email: [] };
          const now = new Date();
          const issued = await issueLeafCertificate(
            ecCa.authority,
            request,
            grant({
              subject,
              subjectAltNames,
              usages: g.usages,
              lifetime: {
                requestedSeconds: g.requestedSeconds,
                defaultSeconds: day,
                maximumSeconds: g.maximumSeconds,
              },
            }),
            { now: () => now, randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)) },
          );
          const seen = readWithPkijs(issued.certificateDer);
          const x509 = new X509Certificate(issued.certificateDer);
          expect(x509.verify(ecCa.intermediate.certificate.x509.publicKey)).to.equal(true);
          expect(seen.subjectAltNames).to.deep.equal(subjectAltNames);
          expect(seen.subject).to.deep.equal(subject.map((a) => ({ type: Oid.commonName, value: a.value })));
          expect(seen.basicConstraints).to.deep.equal({ ca: false });
          expect(seen.extensions.find((e) => e.oid === Oid.basicConstraints)?.critical).to.equal(true);
          const sanExtension = seen.extensions.find((e) => e.oid === Oid.subjectAltName);
          const sanCount = g.dns.length + g.ip.length + g.uri.length;
          expect(sanExtension === undefined).to.equal(sanCount === 0);
          if (sanExtension) expect(sanExtension.critical).to.equal(subject.length === 0);
          expect(seen.keyUsageBits).not.to.include.members([5, 6]);
          const expectedBits = new Set<number>();
          const bitOf: Partial<Record<KubernetesUsage, number>> = {
            signing: 0,
            "digital signature": 0,
            "content commitment": 1,
            "key encipherment": 2,
            "data encipherment": 3,
            "key agreement": 4,
            "encipher only": 7,
            "decipher only": 8,
          };
          for (const usage of g.usages) if (bitOf[usage] !== undefined) expectedBits.add(bitOf[usage]!);
          expect(seen.keyUsageBits).to.deep.equal([...expectedBits].sort((a, b) => a - b));
          // Written out from RFC 5280 and the CA/B registries, independently of src/pki/key-usages.ts.
          const ekuOf: Partial<Record<KubernetesUsage, string>> = {
            "server auth": "1.3.6.1.5.5.7.3.1",
            "client auth": "1.3.6.1.5.5.7.3.2",
            "code signing": "1.3.6.1.5.5.7.3.3",
            "email protection": "1.3.6.1.5.5.7.3.4",
            "s/mime": "1.3.6.1.5.5.7.3.4",
            "ipsec end system": "1.3.6.1.5.5.7.3.5",
            "ipsec tunnel": "1.3.6.1.5.5.7.3.6",
            "ipsec user": "1.3.6.1.5.5.7.3.7",
            timestamping: "1.3.6.1.5.5.7.3.8",
            "ocsp signing": "1.3.6.1.5.5.7.3.9",
            "microsoft sgc": "1.3.6.1.4.1.311.10.3.3",
            "netscape sgc": "2.16.840.1.113730.4.1",
            any: "2.5.29.37.0",
          };
          const expectedEkus = new Set(g.usages.map((u) => ekuOf[u]).filter((oid) => oid !== undefined));
          expect([...seen.extendedKeyUsageOids].sort()).to.deep.equal([...expectedEkus].sort());
          expect(seen.serialNumber.length).to.be.within(1, 17);
          expect(seen.serialNumber[0]! & 0x80).to.equal(0);
          const nowSecond = Math.floor(now.getTime() / 1000) * 1000;
          // The rule itself, not the code's helper: requested (or the default) clamped to [10 min, max].
          const wanted = Math.min(Math.max(g.requestedSeconds ?? day, 600), g.maximumSeconds);
          const issuerNotAfter = ecCa.intermediate.certificate.notAfter.getTime();
          expect(seen.notAfter.getTime()).to.equal(Math.min(nowSecond + wanted * 1000, issuerNotAfter));
          expect(seen.notAfter.getTime()).to.be.at.most(issuerNotAfter);
          expect((seen.notAfter.getTime() - nowSecond) / 1000).to.be.at.most(Math.max(600, g.maximumSeconds));
          expect(seen.notBefore.getTime()).to.equal(Math.floor(now.getTime() / 1000) * 1000 - 300_000);
        }),
        { numRuns: 150 },
      );
    });
  });
  describe("property: policy and issuance together, for generated Signers and requests", () => {
    const namespaces = ["foo", "bar", "baz"] as const;
    const leafUsages: KubernetesUsage[] = [
      "digital signature",
      "key encipherment",
      "server auth",
      "client auth",
      "code signing",
      "email protection",
    ];
    const scenario = fc.record({
      tenants: fc.subarray([...namespaces], { minLength: 1 }),
      allowedUsages: fc.subarray(leafUsages, { minLength: 1 }),
      maxHours: fc.integer({ min: 1, max: 720 }),
      namespace: fc.constantFrom(...namespaces),
      serviceAccount: fc.constantFrom("web", "api"),
      // DNS names as "<service>.<namespace>.svc": the pattern allows the identity's own namespace only.
      dns: fc.uniqueArray(fc.tuple(fc.constantFrom("a", "b", "c"), fc.constantFrom(...namespaces)), {
        maxLength: 4,
        selector: ([service, namespace]) => `${service}.${namespace}`,
      }),
      requestedUsages: fc.subarray(leafUsages, { minLength: 1 }),
      expirationSeconds: fc.option(fc.integer({ min: 600, max: 40 * day }), { nil: undefined }),
    });

    it("over 150 generated cases: refused for exactly the right reason, or issued with exactly what policy allows", async () => {
      await fc.assert(
        fc.asyncProperty(scenario, async (c) => {
          const spec = parseSignerSpec(
            {
              signerName: "example.com/generated",
              certificateAuthority: { secretName: "unused" },
              issuance: {
                defaultDuration: "1h",
                maxDuration: `${c.maxHours}h`,
                allowedUsages: c.allowedUsages,
              },
              policy: {
                requesters: { registrationAuthorities: ["istio-system/istiod"] },
                tenants: { namespaces: c.tenants },
                spiffe: { trustDomain: "cluster.local" },
                dnsNames: ["*.{namespace}.svc"],
              },
            },
            "generated",
          );
          const identity = `spiffe://cluster.local/ns/${c.namespace}/sa/${c.serviceAccount}`;
          const dnsNames = c.dns.map(([service, namespace]) => `${service}.${namespace}.svc`);
          const request = parseCertificateRequest(
            buildTestCertificateRequest({
              key: testKey("ecdsa-p256"),
              subject: [{ type: "O", value: "" }],
              subjectAltNames: { uri: [identity], dns: dnsNames },
            }),
          );
          const decision = evaluateSigningRequest(
            spec,
            {
              requester: {
                username: "system:serviceaccount:istio-system:istiod",
                groups: ["system:serviceaccounts", "system:authenticated"],
              },
              request,
              usages: c.requestedUsages,
              ...(c.expirationSeconds !== undefined ? { expirationSeconds: c.expirationSeconds } : {}),
            },
            { tenantNamespaces: new Set(c.tenants) },
          );
          // The oracle, from the rules as written (README, "What the policy decides").
          const grantedUsages = c.requestedUsages.filter((u) => c.allowedUsages.includes(u));
          const expectedRefusal = !c.tenants.includes(c.namespace)
            ? "NamespaceNotTenant"
            : c.dns.some(([, namespace]) => namespace !== c.namespace)
              ? "DnsNameNotAllowed"
              : grantedUsages.length === 0
                ? "NoAllowedUsages"
                : undefined;
          if (!decision.allowed) {
            expect(decision.reason, decision.message).to.equal(expectedRefusal);
            return;
          }
          expect(expectedRefusal, "allowed although the rules refuse it").to.equal(undefined);
          const now = new Date();
          const issued = await issueLeafCertificate(ecCa.authority, request, decision.grant, {
            now: () => now,
            randomBytes: (n) => crypto.getRandomValues(new Uint8Array(n)),
          });
          const seen = readWithPkijs(issued.certificateDer);
          expect(seen.subjectAltNames).to.deep.equal({ dns: dnsNames, ip: [], uri: [identity], email: [] });
          expect(seen.subject).to.deep.equal([]);
          expect(seen.basicConstraints).to.deep.equal({ ca: false });
          const ekus: Partial<Record<KubernetesUsage, string>> = {
            "server auth": Oid.serverAuth,
            "client auth": Oid.clientAuth,
            "code signing": Oid.codeSigning,
            "email protection": Oid.emailProtection,
          };
          expect([...seen.extendedKeyUsageOids].sort()).to.deep.equal(
            grantedUsages.flatMap((u) => (ekus[u] ? [ekus[u]] : [])).sort(),
          );
          const bits = [
            ...(grantedUsages.includes("digital signature") ? [0] : []),
            ...(grantedUsages.includes("key encipherment") ? [2] : []),
          ];
          expect(seen.keyUsageBits).to.deep.equal(bits);
          const lifetime = Math.min(Math.max(c.expirationSeconds ?? 3600, 600), c.maxHours * 3600);
          expect(seen.notAfter.getTime()).to.equal(Math.floor(now.getTime() / 1000) * 1000 + lifetime * 1000);
          expect(seen.serialNumber[0]! & 0x80).to.equal(0);
        }),
        { numRuns: 150 },
      );
    });
  });
});
