import { expect } from "chai";
import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { sequence } from "../../../src/pki/der-writer.js";
import {
  CertificateRequestError,
  defaultCertificateRequestLimits,
  parseCertificateRequest,
  type CertificateRequestLimits,
} from "../../../src/pki/certificate-request.js";
import { defaultKeyAllowList, keyRejection } from "../../../src/pki/key-allow-list.js";
import { Oid } from "../../../src/pki/oids.js";
import { encodePem } from "../../../src/pki/pem.js";
import { handMadeRequests } from "../../support/differential-corpus.js";
import { thrownBy } from "../../support/errors.js";
import {
  buildTestCertificateRequest,
  caTrueExtension,
  constructedPrimitiveRequests,
  craftedRsaPublicKey,
  opensslRequest,
  testKey,
  type TestRequestOptions,
} from "../../support/pki.js";

/** A request of the parser-differential corpus, by name, as PEM. */
function handMade(name: string): () => string {
  const request = handMadeRequests.find((candidate) => candidate.name === name);
  if (!request) throw new Error(`no hand-made request named ${name}`);
  return () => encodePem("CERTIFICATE REQUEST", request.der());
}

describe("parseCertificateRequest", () => {
  // The size, exponent and curve are read from our parse of the key, not asked of OpenSSL; they
  // must be what OpenSSL reads (policy checks them against the signer's allowed key types).
  it("describes RSA and ECDSA keys as OpenSSL's asymmetricKeyDetails does", () => {
    const keys: [string, KeyObject][] = [
      ["rsa-1024", testKey("rsa-1024")],
      ["rsa-2048", testKey("rsa-2048")],
      ["rsa-3072", testKey("rsa-3072")],
      [
        "rsa-2047 with exponent 3",
        generateKeyPairSync("rsa", { modulusLength: 2047, publicExponent: 3 }).privateKey,
      ],
      ["ecdsa-p256", testKey("ecdsa-p256")],
      ["ecdsa-p384", testKey("ecdsa-p384")],
      ["ecdsa-p521", testKey("ecdsa-p521")],
      ["secp256k1 (no short name)", generateKeyPairSync("ec", { namedCurve: "secp256k1" }).privateKey],
    ];
    const shortCurveNames: Record<string, string> = {
      prime256v1: "P-256",
      secp384r1: "P-384",
      secp521r1: "P-521",
    };
    for (const [name, key] of keys) {
      const details = createPublicKey(key).asymmetricKeyDetails!;
      const description = parseCertificateRequest(buildTestCertificateRequest({ key })).publicKeyDescription;
      const expected =
        key.asymmetricKeyType === "rsa"
          ? { algorithm: "RSA", bits: details.modulusLength, publicExponent: details.publicExponent }
          : { algorithm: "ECDSA", curve: shortCurveNames[details.namedCurve!] ?? details.namedCurve };
      expect(description, name).to.deep.equal(expected);
    }
  });

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

  it("reads a URI SAN exactly as Go's url.Parse and URL.String() give it back", () => {
    for (const uri of [
      "spiffe://cluster.local/ns/foo/sa/default",
      "https://web.example.com:8443/x?y=1&z=%2F#top",
      "spiffe://td/ns/a%2Fb/sa/c",
      "spiffe://td/ns/a!$&'()*+,;=:@/sa/b?q=/?'!#f'!/?",
      "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
      "spiffe:/ns/a",
    ]) {
      const pem = buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subjectAltNames: { uri: [uri] },
      });
      expect(parseCertificateRequest(pem).subjectAltNames.uri).to.deep.equal([uri]);
    }
  });

  it("reads a UTF8String CN with a leading U+FEFF as Go does, without stripping it", () => {
    const request = parseCertificateRequest(
      handMade("UTF8String CN with a leading byte-order mark (U+FEFF)")(),
    );
    expect(request.subject).to.deep.equal([{ type: "CN", value: "\ufeffadmin" }]);
  });

  it("reads an extension id with an arc of 2^31-1, Go's largest", () => {
    const request = parseCertificateRequest(handMade("extension id with an arc of 2^31-1 (Go's largest)")());
    expect(request.requestedExtensions.map((extension) => extension.oid)).to.include("1.3.2147483647");
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
      // Found by the parser-differential test: Go's encoding/asn1 refuses these OIDs and strings.
      [
        "an OID arc of 2^31 (Go: base 128 integer too large)",
        handMade("extension id with an arc of 2^31 (Go's limit is 2^31-1)"),
        "MalformedRequest",
      ],
      [
        "an OID arc with a leading 0x80",
        handMade("extension id with a non-minimal arc (leading 0x80)"),
        "MalformedRequest",
      ],
      ["a PrintableString CN with a NUL", handMade("PrintableString CN with a NUL"), "MalformedRequest"],
      [
        "a PrintableString with '_' and '@'",
        handMade("PrintableString with '_' and '@'"),
        "MalformedRequest",
      ],
      ["a BMPString with a lone surrogate", handMade("BMPString with a lone surrogate"), "MalformedRequest"],
      [
        "a BMPString CN of a surrogate pair",
        handMade("BMPString CN of a surrogate pair"),
        "MalformedRequest",
      ],
      [
        "a BMPString CN with the noncharacter U+FDD0",
        handMade("BMPString CN with the noncharacter U+FDD0"),
        "MalformedRequest",
      ],
      [
        "a BMPString CN with the noncharacter U+FFFE",
        handMade("BMPString CN with the noncharacter U+FFFE"),
        "MalformedRequest",
      ],
      [
        "a BMPString CN admin with a trailing NUL (Go reads admin)",
        handMade("BMPString CN with a trailing NUL (Go strips it as a terminator)"),
        "MalformedRequest",
      ],
      [
        "a UTF8String CN with an encoded surrogate",
        handMade("UTF8String CN with an encoded surrogate (ED A0 80)"),
        "MalformedRequest",
      ],
    ];
    for (const [name, input, reason] of cases) {
      it(`${name} (${reason})`, () => {
        expect(thrownBy(CertificateRequestError, () => parseCertificateRequest(input())).reason).to.equal(
          reason,
        );
      });
    }

    // Found by the parser-differential test: Go's url.Parse refuses these or gives back other text.
    for (const [name, uri] of [
      ["a bad percent escape (Go: invalid URL escape)", "spiffe://td/ns/%zz/sa/x"],
      ["a truncated percent escape", "spiffe://td/ns/a/sa/b%4"],
      ["a backtick (Go gives back %60)", "spiffe://td/ns/a/sa/b`c"],
      ["a double quote (Go gives back %22)", 'spiffe://td/ns/a/sa/b"c'],
      ["an upper-case scheme (Go lower-cases it)", "SPIFFE://td/ns/a/sa/b"],
      ["an empty fragment (Go drops the '#')", "spiffe://td/ns/a/sa/b#"],
      ["an empty authority (Go gives back spiffe:)", "spiffe://"],
      ["an empty authority before a path", "spiffe:///ns/a/sa/b"],
      ["user info (Go re-escapes it)", "spiffe://a%41b@td/ns/a/sa/b"],
      ["a percent-escape in the host", "spiffe://t%41d/ns/a/sa/b"],
      ["an IP-literal host", "https://[::1]/x"],
      ["a trailing dot in the host (Go: invalid domain)", "spiffe://td./ns/a/sa/b"],
      ["an empty port", "spiffe://td:/ns/a/sa/b"],
      ["no scheme", "//td/ns/a/sa/b"],
      ["a '[' in the path", "spiffe://td/ns/a[/sa/b"],
    ] as const) {
      it(`a URI SAN with ${name}: ${uri} (MalformedRequest)`, () => {
        const pem = buildTestCertificateRequest({ key: key(), subjectAltNames: { uri: [uri] } });
        const error = thrownBy(CertificateRequestError, () => parseCertificateRequest(pem));
        expect(error.reason).to.equal("MalformedRequest");
        expect(error.message).to.match(/URI SAN is not an absolute RFC 3986 URI/);
      });
    }

    for (const [name, pem] of Object.entries(constructedPrimitiveRequests(testKey("ecdsa-p256")))) {
      it(`a ${name}, which Go refuses (MalformedRequest)`, () => {
        const error = thrownBy(CertificateRequestError, () => parseCertificateRequest(pem));
        expect(error.reason).to.equal("MalformedRequest");
        expect(error.message).to.match(/must be primitive in DER/);
      });
    }

    it("a SHA-1 signed request (UnsupportedSignatureAlgorithm)", () => {
      const { csrPem } = opensslRequest("rsa", "/CN=old", [], ["-sha1"]);
      const error = thrownBy(CertificateRequestError, () => parseCertificateRequest(csrPem));
      expect(error.reason).to.equal("UnsupportedSignatureAlgorithm");
      expect(error.message).to.contain("1.2.840.113549.1.1.5");
    });

    // The key goes to OpenSSL only inside verify (no KeyObject is made for an RSA or named-curve EC
    // key): one OpenSSL cannot read is still refused as such, whatever else the request gets wrong.
    const unreadable = "public key could not be read (unsupported algorithm or malformed)";
    const keyOrder: {
      name: string;
      request: TestRequestOptions;
      reason: string;
      message?: string;
    }[] = [
      {
        name: "an EC key whose point is off its curve (KeyNotAllowed, not a signature problem)",
        request: { key: testKey("ecdsa-p256"), breakPublicKey: true },
        reason: "KeyNotAllowed",
        message: unreadable,
      },
      {
        name: "an off-curve EC key under an RSA signature algorithm (the key is refused first)",
        request: {
          key: testKey("ecdsa-p256"),
          breakPublicKey: true,
          signatureAlgorithmOid: Oid.sha256WithRsa,
        },
        reason: "KeyNotAllowed",
        message: unreadable,
      },
      {
        name: "an off-curve EC key under a signature algorithm we refuse (the key is refused first)",
        // sha1WithRSAEncryption
        request: {
          key: testKey("ecdsa-p256"),
          breakPublicKey: true,
          signatureAlgorithmOid: "1.2.840.113549.1.1.5",
        },
        reason: "KeyNotAllowed",
        message: unreadable,
      },
      {
        name: "a readable EC key under an RSA signature algorithm (UnsupportedSignatureAlgorithm)",
        request: { key: testKey("ecdsa-p256"), signatureAlgorithmOid: Oid.sha256WithRsa },
        reason: "UnsupportedSignatureAlgorithm",
        message: "signature algorithm does not match the ECDSA key",
      },
      {
        name: "an RSA key under an ECDSA signature algorithm (UnsupportedSignatureAlgorithm)",
        request: { key: testKey("rsa-2048"), signatureAlgorithmOid: Oid.ecdsaWithSha256 },
        reason: "UnsupportedSignatureAlgorithm",
        message: "signature algorithm does not match the RSA key",
      },
      {
        name: "an RSA request whose signature is broken (InvalidSignature)",
        request: { key: testKey("rsa-2048"), breakSignature: true },
        reason: "InvalidSignature",
      },
    ];
    for (const { name, request, reason, message } of keyOrder) {
      it(name, () => {
        const pem = buildTestCertificateRequest(request);
        const error = thrownBy(CertificateRequestError, () => parseCertificateRequest(pem));
        expect(error.reason).to.equal(reason);
        if (message !== undefined) expect(error.message).to.equal(message);
      });
    }

    // No signer accepts an RSA key above 8192 bits, and verifying a 16,384-bit one costs milliseconds:
    // such a key is refused from our own parse, before OpenSSL verifies anything. The crafted keys
    // cannot sign, so a request whose key reaches verify is refused InvalidSignature instead.
    const sizeOrder: { name: string; bits: number; limits?: CertificateRequestLimits; reason: string }[] = [
      {
        name: "an RSA key of 8193 bits, one above the largest allowed, before its signature is verified",
        bits: 8193,
        reason: "KeyNotAllowed",
      },
      {
        name: "an RSA key of 8200 bits, before its signature is verified",
        bits: 8200,
        reason: "KeyNotAllowed",
      },
      {
        name: "an RSA key of 16384 bits, before its signature is verified",
        bits: 16384,
        reason: "KeyNotAllowed",
      },
      {
        name: "not an RSA key of 8192 bits, the largest allowed (it reaches verify)",
        bits: 8192,
        reason: "InvalidSignature",
      },
      {
        name: "not an RSA key of 8200 bits under limits without an RSA size cap (it reaches verify)",
        bits: 8200,
        limits: { ...defaultCertificateRequestLimits, maxRsaModulusBits: undefined },
        reason: "InvalidSignature",
      },
    ];
    for (const { name, bits, limits, reason } of sizeOrder) {
      it(name, () => {
        const pem = buildTestCertificateRequest({
          key: testKey("rsa-2048"),
          publicKey: craftedRsaPublicKey(bits),
        });
        const error = thrownBy(CertificateRequestError, () => parseCertificateRequest(pem, limits));
        expect(error.reason).to.equal(reason);
        if (reason === "KeyNotAllowed")
          expect(error.message).to.equal(
            `RSA key of ${bits} bits is above 8192, the most any signer accepts`,
          );
      });
    }

    it("an RSA key under the X.500 OID 2.5.8.1.1, which OpenSSL reads and Go does not (KeyNotAllowed)", () => {
      // Signed by its key: without the refusal it would be accepted, its size and exponent unchecked.
      const pem = buildTestCertificateRequest({
        key: testKey("rsa-2048"),
        publicKeyAlgorithmOid: "2.5.8.1.1",
      });
      const error = thrownBy(CertificateRequestError, () => parseCertificateRequest(pem));
      expect(error.reason).to.equal("KeyNotAllowed");
      expect(error.message).to.equal(
        "an RSA public key is accepted only as rsaEncryption (RFC 3279), the form Go reads",
      );
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
