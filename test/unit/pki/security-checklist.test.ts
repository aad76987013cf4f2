/**
 * One regression test per row of shared/notes/security-checklist.md that concerns parsing or
 * issuance, named after the row and the incident it guards against. Rows about signer names,
 * kubelet SANs, SPIFFE tenancy and wildcards are policy and controller rows, tested there.
 */
import { expect } from "chai";
import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { booleanTrue, objectIdentifier, sequence, tlv } from "../../../src/pki/der-writer.js";
import { CertificateRequestError, parseCertificateRequest } from "../../../src/pki/certificate-request.js";
import { issueLeafCertificate } from "../../../src/pki/issuance.js";
import { Oid } from "../../../src/pki/oids.js";
import { encodePem } from "../../../src/pki/pem.js";
import {
  buildTestCertificateRequest,
  makeTestCertificateAuthority,
  opensslText,
  withTempDir,
  testKey,
  type TestCertificateAuthority,
} from "../../support/pki.js";
import { readWithPkijs } from "../../support/pkijs-oracle.js";
import { thrownBy } from "../../support/errors.js";
import { openssl } from "../../support/openssl.js";

/** "Reason: message" of a refusal, to pin down which check refused. */
function reasonAndMessage(error: CertificateRequestError): string {
  return `${error.reason}: ${error.message}`;
}

describe("security checklist: parsing and issuance", function () {
  this.timeout(30_000);
  let ca: TestCertificateAuthority;
  before(async () => {
    ca = await makeTestCertificateAuthority({ name: "checklist" });
  });
  const key = () => testKey("ecdsa-p256");

  describe("CSR asks CA:true, keyCertSign, name constraints, extra extensions (Talos CVE-2022-36103, step-ca templates)", () => {
    it("issues only the server-side template's extensions", async () => {
      const keyUsageCertSign = {
        oid: Oid.keyUsage,
        critical: true,
        value: Uint8Array.of(0x03, 0x02, 0x01, 0x06),
      };
      const nameConstraints = {
        oid: Oid.nameConstraints,
        critical: true,
        value: sequence(tlv(0xa0, sequence(tlv(0x82, new TextEncoder().encode("example.com"))))),
      };
      const custom = { oid: "1.3.6.1.4.1.99999.1", value: sequence(booleanTrue()) };
      const caTrue = { oid: Oid.basicConstraints, critical: true, value: sequence(booleanTrue()) };
      const request = parseCertificateRequest(
        buildTestCertificateRequest({
          key: key(),
          subjectAltNames: { dns: ["ok.example"] },
          extraExtensions: [caTrue, keyUsageCertSign, nameConstraints, custom],
        }),
      );
      expect(request.requestsCertificateAuthority).to.equal(true);
      const issued = await issueLeafCertificate(ca.authority, request, {
        subject: [],
        subjectAltNames: request.subjectAltNames,
        usages: ["digital signature", "server auth"],
        lifetime: { defaultSeconds: 3600, maximumSeconds: 3600 },
        includeRoot: false,
      });
      const seen = readWithPkijs(issued.certificateDer);
      expect(seen.extensions.map((e) => e.oid)).to.deep.equal([
        Oid.basicConstraints,
        Oid.keyUsage,
        Oid.extendedKeyUsage,
        Oid.subjectKeyIdentifier,
        Oid.authorityKeyIdentifier,
        Oid.subjectAltName,
      ]);
      expect(seen.basicConstraints).to.deep.equal({ ca: false });
      expect(seen.keyUsageBits).to.deep.equal([0]);
      expect(opensslText(issued.chainPem)).not.to.contain("Name Constraints");
    });
  });

  describe("parser differential: verify one thing, sign another (node-forge CVE-2025-12816)", () => {
    it("rejects duplicate extensions", () => {
      const dup = {
        oid: Oid.subjectAltName,
        value: sequence(tlv(0x82, new TextEncoder().encode("evil.example"))),
      };
      expect(
        thrownBy(CertificateRequestError, () =>
          parseCertificateRequest(
            buildTestCertificateRequest({
              key: key(),
              subjectAltNames: { dns: ["good.example"] },
              extraExtensions: [dup],
            }),
          ),
        ).reason,
      ).to.equal("DuplicateExtension");
    });
    it("rejects duplicate extensionRequest attributes", () => {
      expect(
        thrownBy(CertificateRequestError, () =>
          parseCertificateRequest(
            buildTestCertificateRequest({
              key: key(),
              subjectAltNames: { dns: ["a.example"] },
              extensionRequestCopies: 2,
            }),
          ),
        ).reason,
      ).to.equal("DuplicateExtensionRequest");
    });
    it("rejects several CNs", () => {
      const subject = [
        { type: "CN", value: "good" },
        { type: "CN", value: "evil" },
      ];
      expect(
        thrownBy(CertificateRequestError, () =>
          parseCertificateRequest(buildTestCertificateRequest({ key: key(), subject })),
        ).reason,
      ).to.equal("MultipleCommonNames");
    });
    it("never turns a CN into a SAN", () => {
      const request = parseCertificateRequest(
        buildTestCertificateRequest({ key: key(), subject: [{ type: "CN", value: "looks.like.a.host" }] }),
      );
      expect(request.subjectAltNames).to.deep.equal({ dns: [], ip: [], uri: [], email: [] });
    });
    it("rejects trailing bytes after the request (strict DER; BER forms are covered in der.test.ts)", () => {
      const good = buildTestCertificateRequest({ key: key() });
      const der = Buffer.from(good.replace(/-----[A-Z ]+-----|\n/g, ""), "base64");
      const trailing = encodePem("CERTIFICATE REQUEST", Buffer.concat([der, Buffer.from([0x05, 0x00])]));
      expect(thrownBy(CertificateRequestError, () => parseCertificateRequest(trailing)).reason).to.equal(
        "MalformedRequest",
      );
    });
  });

  describe("huge or deeply nested input (cert-manager CVE-2024-12401, asn1js/forge depth DoS)", () => {
    it("refuses input over the byte cap before decoding it", () => {
      const huge =
        "-----BEGIN CERTIFICATE REQUEST-----\n" +
        "A".repeat(1 << 20) +
        "\n-----END CERTIFICATE REQUEST-----\n";
      expect(thrownBy(CertificateRequestError, () => parseCertificateRequest(huge)).reason).to.equal(
        "RequestTooLarge",
      );
    });
    it("refuses deep nesting within the cap", () => {
      let nested: Uint8Array = sequence();
      for (let i = 0; i < 500; i++) nested = sequence(nested);
      // The depth limit must be what refuses it, before any structural check could.
      expect(
        reasonAndMessage(
          thrownBy(CertificateRequestError, () =>
            parseCertificateRequest(encodePem("CERTIFICATE REQUEST", nested)),
          ),
        ),
      ).to.equal("MalformedRequest: request DER: DER nesting deeper than 12");
      // Just within the limit the same shape gets past the decoder (and fails the structure check).
      let shallow: Uint8Array = sequence();
      for (let i = 0; i < 11; i++) shallow = sequence(shallow);
      expect(
        reasonAndMessage(
          thrownBy(CertificateRequestError, () =>
            parseCertificateRequest(encodePem("CERTIFICATE REQUEST", shallow)),
          ),
        ),
      ).not.to.contain("nesting deeper");
    });
    it("refuses too many nodes within the cap", () => {
      const wide = sequence(...Array.from({ length: 1500 }, () => Uint8Array.of(0x05, 0x00)));
      expect(
        reasonAndMessage(
          thrownBy(CertificateRequestError, () =>
            parseCertificateRequest(encodePem("CERTIFICATE REQUEST", wide)),
          ),
        ),
      ).to.equal("MalformedRequest: request DER: more than 512 DER values");
    });
  });

  describe("forged signature (node-forge RSA verification CVEs)", () => {
    it("verifies proof of possession with OpenSSL for RSA and ECDSA", () => {
      expect(
        thrownBy(CertificateRequestError, () =>
          parseCertificateRequest(
            buildTestCertificateRequest({ key: testKey("rsa-2048"), breakSignature: true }),
          ),
        ).reason,
      ).to.equal("InvalidSignature");
      expect(
        thrownBy(CertificateRequestError, () =>
          parseCertificateRequest(buildTestCertificateRequest({ key: key(), breakSignature: true })),
        ).reason,
      ).to.equal("InvalidSignature");
    });
    it("refuses a request whose signature algorithm does not match its key", () => {
      const pem = buildTestCertificateRequest({ key: key() });
      const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\n/g, ""), "base64");
      const ecdsaOid = Buffer.from(objectIdentifier(Oid.ecdsaWithSha256));
      const at = der.lastIndexOf(ecdsaOid);
      expect(at).to.be.greaterThan(0);
      // ecdsa-with-SHA256 -> ecdsa-with-SHA384 (same length): the signature no longer verifies under the named hash.
      der[at + ecdsaOid.length - 1] = 0x03;
      expect(
        thrownBy(CertificateRequestError, () =>
          parseCertificateRequest(encodePem("CERTIFICATE REQUEST", der)),
        ).reason,
      ).to.equal("InvalidSignature");
    });
  });

  describe("leaf outlives issuer (Istio #18990, #59768)", () => {
    it("clamps NotAfter to the issuer's NotAfter", async () => {
      const request = parseCertificateRequest(buildTestCertificateRequest({ key: key() }));
      const issued = await issueLeafCertificate(ca.authority, request, {
        subject: [],
        subjectAltNames: request.subjectAltNames,
        usages: ["digital signature"],
        lifetime: {
          requestedSeconds: 100 * 365 * 86400,
          defaultSeconds: 3600,
          maximumSeconds: 100 * 365 * 86400,
        },
        includeRoot: false,
      });
      expect(issued.notAfter.getTime()).to.equal(ca.intermediate.certificate.notAfter.getTime());
    });
  });

  describe("unknown request shape (step-ca CVE-2026-30836): default deny", () => {
    it("refuses Ed25519 keys, which no signer profile allows", () => {
      const ed = generateKeyPairSync("ed25519").privateKey;
      // Our test builder signs with a hash, which Ed25519 does not take; openssl makes the request.
      const keyPem = ed.export({ format: "pem", type: "pkcs8" }).toString();
      const csr = withTempDir((dir) => {
        writeFileSync(join(dir, "ed25519.pem"), keyPem);
        return openssl(["req", "-new", "-key", join(dir, "ed25519.pem"), "-subj", "/CN=ed"]);
      });
      expect(thrownBy(CertificateRequestError, () => parseCertificateRequest(csr)).reason).to.be.oneOf([
        "UnsupportedSignatureAlgorithm",
        "KeyNotAllowed",
      ]);
    });
    it("refuses otherName, directoryName and registeredID SANs", () => {
      for (const name of [
        Uint8Array.of(0xa0, 0x03, 0x06, 0x01, 0x2a),
        tlv(0xa4, sequence()),
        Uint8Array.of(0x88, 0x01, 0x2a),
      ]) {
        const extension = { oid: Oid.subjectAltName, value: sequence(name) };
        expect(
          thrownBy(CertificateRequestError, () =>
            parseCertificateRequest(
              buildTestCertificateRequest({ key: key(), extraExtensions: [extension] }),
            ),
          ).reason,
        ).to.equal("UnsupportedSubjectAltName");
      }
    });
  });
});
