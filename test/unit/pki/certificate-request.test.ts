import { expect } from "chai";
import { sequence } from "../../../src/pki/der.js";
import {
  CertificateRequestError,
  defaultKeyAllowList,
  keyRejection,
  parseCertificateRequest,
} from "../../../src/pki/certificate-request.js";
import { Oid } from "../../../src/pki/oids.js";
import { encodePem } from "../../../src/pki/pem.js";
import { handMadeRequests } from "../../support/differential-corpus.js";
import {
  buildTestCertificateRequest,
  caTrueExtension,
  constructedPrimitiveRequests,
  opensslRequest,
  testKey,
} from "../../support/pki.js";

/** A request of the parser-differential corpus, by name, as PEM. */
function handMade(name: string): () => string {
  const request = handMadeRequests.find((candidate) => candidate.name === name);
  if (!request) throw new Error(`no hand-made request named ${name}`);
  return () => encodePem("CERTIFICATE REQUEST", request.der());
}

function rejectionOf(run: () => unknown): CertificateRequestError {
  try {
    run();
  } catch (error) {
    if (error instanceof CertificateRequestError) return error;
    throw error;
  }
  throw new Error("expected the request to be refused");
}

describe("parseCertificateRequest", () => {
  it("reads an openssl RSA request: subject, SANs and key", () => {
    const { csrPem } = opensslRequest("rsa", "/CN=web/O=acme", [
      "subjectAltName=DNS:web.example.com,IP:10.1.2.3,IP:fd00::1",
    ]);
    const request = parseCertificateRequest(csrPem);
    expect(request.subject).to.deep.equal([
      { type: "CN", value: "web" },
      { type: "O", value: "acme" },
    ]);
    expect(request.subjectAltNames).to.deep.equal({
      dns: ["web.example.com"],
      ip: ["10.1.2.3", "fd00::1"],
      uri: [],
      email: [],
    });
    expect(request.publicKeyDescription).to.deep.include({ algorithm: "RSA", bits: 2048 });
  });

  it('reads an Istio-shaped ECDSA request: O="" subject and one critical SPIFFE URI SAN', () => {
    const pem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subject: [{ type: "O", value: "" }],
      subjectAltNames: { uri: ["spiffe://cluster.local/ns/foo/sa/default"] },
    });
    const request = parseCertificateRequest(pem);
    expect(request.subject).to.deep.equal([{ type: "O", value: "" }]);
    expect(request.subjectAltNames.uri).to.deep.equal(["spiffe://cluster.local/ns/foo/sa/default"]);
    expect(request.publicKeyDescription).to.deep.equal({ algorithm: "ECDSA", curve: "P-256" });
  });

  it("reads a ztunnel-shaped request with an empty subject", () => {
    const pem = buildTestCertificateRequest({
      key: testKey("ecdsa-p384"),
      subjectAltNames: { uri: ["spiffe://td/ns/a/sa/b"] },
    });
    const request = parseCertificateRequest(pem);
    expect(request.subject).to.deep.equal([]);
    expect(request.publicKeyDescription).to.deep.equal({ algorithm: "ECDSA", curve: "P-384" });
  });

  it("flags a request for basicConstraints CA:TRUE so policy can refuse it", () => {
    const pem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subject: [{ type: "CN", value: "x" }],
      extraExtensions: [caTrueExtension],
    });
    const request = parseCertificateRequest(pem);
    expect(request.requestsCertificateAuthority).to.equal(true);
    expect(request.requestedExtensionOids).to.include(Oid.basicConstraints);
  });

  describe("refuses", () => {
    const key = () => testKey("ecdsa-p256");
    const cases: [string, () => string | Uint8Array, string][] = [
      ["input over the byte cap, before decoding", () => "A".repeat(7000), "RequestTooLarge"],
      [
        "two CERTIFICATE REQUEST blocks",
        () => buildTestCertificateRequest({ key: key() }).repeat(2),
        "MalformedRequest",
      ],
      [
        "text after the block",
        () => buildTestCertificateRequest({ key: key() }) + "trailing words\n",
        "MalformedRequest",
      ],
      [
        "text before the block",
        () => "hello\n" + buildTestCertificateRequest({ key: key() }),
        "MalformedRequest",
      ],
      [
        "a CERTIFICATE block instead",
        () => buildTestCertificateRequest({ key: key() }).replaceAll("CERTIFICATE REQUEST", "CERTIFICATE"),
        "MalformedRequest",
      ],
      [
        "a forged signature",
        () => buildTestCertificateRequest({ key: key(), breakSignature: true }),
        "InvalidSignature",
      ],
      [
        "a duplicated extension",
        () =>
          buildTestCertificateRequest({
            key: key(),
            subjectAltNames: { dns: ["a.example"] },
            extraExtensions: [{ oid: Oid.subjectAltName, value: sequence(Uint8Array.of(0x82, 0x01, 0x62)) }],
          }),
        "DuplicateExtension",
      ],
      [
        "a duplicated extensionRequest attribute",
        () =>
          buildTestCertificateRequest({
            key: key(),
            subjectAltNames: { dns: ["a.example"] },
            extensionRequestCopies: 2,
          }),
        "DuplicateExtensionRequest",
      ],
      [
        "several CNs",
        () =>
          buildTestCertificateRequest({
            key: key(),
            subject: [
              { type: "CN", value: "a" },
              { type: "CN", value: "b" },
            ],
          }),
        "MultipleCommonNames",
      ],
      [
        "an otherName SAN (unknown shapes are denied)",
        () =>
          buildTestCertificateRequest({
            key: key(),
            extraExtensions: [
              { oid: Oid.subjectAltName, value: sequence(Uint8Array.of(0xa0, 0x03, 0x06, 0x01, 0x2a)) },
            ],
          }),
        "UnsupportedSubjectAltName",
      ],
      [
        "an empty SAN extension",
        () =>
          buildTestCertificateRequest({
            key: key(),
            extraExtensions: [{ oid: Oid.subjectAltName, value: sequence() }],
          }),
        "UnsupportedSubjectAltName",
      ],
      // Found by the parser-differential test: Go's crypto/x509 (kube-apiserver) refuses these.
      [
        "a request without the attributes field",
        handMade("no attributes field at all (RFC 2986 makes [0] mandatory)"),
        "MalformedRequest",
      ],
      ["an RSA key without NULL parameters", handMade("RSA key without NULL parameters"), "KeyNotAllowed"],
      [
        "an RSA key with [PRIVATE 0] instead of NULL parameters",
        handMade("RSA key with [PRIVATE 0] instead of NULL parameters"),
        "KeyNotAllowed",
      ],
      [
        "an ECDSA key as a compressed point",
        handMade("ECDSA P-256 key as a compressed point"),
        "KeyNotAllowed",
      ],
      [
        "an RSAPublicKey in BER high-tag-number form",
        handMade("RSAPublicKey SEQUENCE in BER high-tag-number form (OpenSSL reads it)"),
        "MalformedRequest",
      ],
      [
        "an RSA public exponent above 2^31-1",
        handMade("RSA key with the public exponent 2^31+1 (Go's limit is 2^31-1)"),
        "KeyNotAllowed",
      ],
    ];
    for (const [name, input, reason] of cases) {
      it(`${name} (${reason})`, () => {
        expect(rejectionOf(() => parseCertificateRequest(input())).reason).to.equal(reason);
      });
    }

    for (const [name, pem] of Object.entries(constructedPrimitiveRequests(testKey("ecdsa-p256")))) {
      it(`a ${name}, which Go refuses (MalformedRequest)`, () => {
        const error = rejectionOf(() => parseCertificateRequest(pem));
        expect(error.reason).to.equal("MalformedRequest");
        expect(error.message).to.match(/must be primitive in DER/);
      });
    }

    it("a SHA-1 signed request (UnsupportedSignatureAlgorithm)", () => {
      const { csrPem } = opensslRequest("rsa", "/CN=old", [], ["-sha1"]);
      const error = rejectionOf(() => parseCertificateRequest(csrPem));
      expect(error.reason).to.equal("UnsupportedSignatureAlgorithm");
      expect(error.message).to.contain("1.2.840.113549.1.1.5");
    });
  });
});

describe("keyRejection (default allow-list: RSA 2048-8192, P-256, P-384)", () => {
  it("allows RSA-2048 and the two curves", () => {
    expect(
      keyRejection({ algorithm: "RSA", bits: 2048, publicExponent: 65537n }, defaultKeyAllowList),
    ).to.equal(undefined);
    expect(keyRejection({ algorithm: "ECDSA", curve: "P-256" }, defaultKeyAllowList)).to.equal(undefined);
    expect(keyRejection({ algorithm: "ECDSA", curve: "P-384" }, defaultKeyAllowList)).to.equal(undefined);
  });
  it("names the rule for RSA-1024, P-521 and a small exponent", () => {
    expect(
      keyRejection({ algorithm: "RSA", bits: 1024, publicExponent: 65537n }, defaultKeyAllowList),
    ).to.match(/1024 bits is outside 2048-8192/);
    expect(keyRejection({ algorithm: "ECDSA", curve: "P-521" }, defaultKeyAllowList)).to.match(
      /P-521 is not one of P-256, P-384/,
    );
    expect(keyRejection({ algorithm: "RSA", bits: 2048, publicExponent: 3n }, defaultKeyAllowList)).to.match(
      /exponent/,
    );
  });
  it("reads the real key size from a parsed RSA-1024 request", () => {
    const request = parseCertificateRequest(buildTestCertificateRequest({ key: testKey("rsa-1024") }));
    expect(keyRejection(request.publicKeyDescription, defaultKeyAllowList)).to.match(/1024 bits/);
  });
});
