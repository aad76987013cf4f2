import { expect } from "chai";
import { createPublicKey, generateKeyPairSync } from "node:crypto";
import { PodCertificateKeyError, readPodCertificateKey } from "../../../src/pki/pod-certificate-key.js";
import {
  podKeyFields,
  podTestKey,
  stubRequest,
  type PodTestKeyType,
} from "../../support/pod-certificates.js";
import { craftedRsaPublicKey } from "../../support/pki.js";

const podUID = "5f0c1a2b-0000-4000-8000-00000000abcd";

describe("readPodCertificateKey: the key of a PodCertificateRequest and its proof", function () {
  this.timeout(30_000);

  const types: [PodTestKeyType, string][] = [
    ["RSA3072", "RSA-3072"],
    ["ECDSAP256", "ECDSA-P-256"],
    ["ECDSAP384", "ECDSA-P-384"],
    ["ECDSAP521", "ECDSA-P-521"],
    ["ED25519", "Ed25519"],
  ];
  for (const [type, description] of types) {
    it(`verifies the proof of possession over the pod UID of a ${type} key`, () => {
      const key = readPodCertificateKey({ podUID, ...podKeyFields(podTestKey(type), podUID, "proof") });
      expect(key).to.include({ keyType: type, description, proofVerified: true });
      const spki = createPublicKey(podTestKey(type)).export({ format: "der", type: "spki" });
      expect(Buffer.from(key.subjectPublicKeyInfo).equals(spki)).to.equal(true);
    });
  }

  it("refuses a proof made over another pod's UID (a replayed proof)", () => {
    for (const type of ["RSA3072", "ECDSAP256", "ED25519"] as const) {
      const fields = podKeyFields(podTestKey(type), podUID, "proof", { proofFor: "another-pod-uid" });
      expect(readPodCertificateKey({ podUID, ...fields }).proofVerified, type).to.equal(false);
    }
  });

  it("refuses a proof that is not a signature at all", () => {
    const fields = podKeyFields(podTestKey("ECDSAP256"), podUID, "proof");
    const key = readPodCertificateKey({
      podUID,
      ...fields,
      proofOfPossession: Buffer.from("nope").toString("base64"),
    });
    expect(key.proofVerified).to.equal(false);
  });

  it("reads the stub PKCS#10 request and verifies its self-signature", () => {
    for (const type of ["RSA3072", "ECDSAP256", "ECDSAP384"] as const) {
      const key = readPodCertificateKey({ podUID, ...podKeyFields(podTestKey(type), podUID, "stub") });
      expect(key, type).to.include({ keyType: type, proofVerified: true });
    }
  });

  it("refuses a stub request whose signature does not verify", () => {
    const stub = stubRequest(podTestKey("ECDSAP256"), { breakSignature: true }).toString("base64");
    expect(readPodCertificateKey({ podUID, stubPKCS10Request: stub }).proofVerified).to.equal(false);
  });

  it("classifies an Ed25519 stub request (no Signer accepts it, so its proof is not needed)", () => {
    const key = readPodCertificateKey({ podUID, ...podKeyFields(podTestKey("ED25519"), podUID, "stub") });
    expect(key).to.include({ keyType: "ED25519", proofVerified: false });
  });

  it("classifies a stub request with an RSA key above 8192 bits without parsing it (no Signer accepts it)", () => {
    // Parsed, the parser would refuse the key (above its RSA cap) and the stub would be malformed.
    const stub = stubRequest(podTestKey("RSA2048"), { publicKey: craftedRsaPublicKey(8200) });
    const key = readPodCertificateKey({ podUID, stubPKCS10Request: stub.toString("base64") });
    expect(key).to.include({ keyType: undefined, description: "RSA-8200", proofVerified: false });
  });

  it("leaves unverified a proof by an RSA key with an exponent above 2^31-1 (Go refuses it; OpenSSL would take milliseconds)", () => {
    // A real key and a real proof: verified, the proof would hold.
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 3072, publicExponent: 0x80000001 });
    const key = readPodCertificateKey({ podUID, ...podKeyFields(privateKey, podUID, "proof") });
    expect(key).to.include({ keyType: "RSA3072", description: "RSA-3072", proofVerified: false });
  });

  it("names RSA sizes outside the API's set as no key type", () => {
    const key = readPodCertificateKey({ podUID, ...podKeyFields(podTestKey("RSA2048"), podUID, "proof") });
    expect(key.keyType).to.equal(undefined);
    expect(key.description).to.equal("RSA-2048");
  });

  it("refuses both forms at once, neither, and bytes that are no key, without echoing them", () => {
    const proof = podKeyFields(podTestKey("ECDSAP256"), podUID, "proof");
    const stub = podKeyFields(podTestKey("ECDSAP256"), podUID, "stub");
    expect(() => readPodCertificateKey({ podUID, ...proof, ...stub })).to.throw(
      PodCertificateKeyError,
      /exactly one/,
    );
    expect(() => readPodCertificateKey({ podUID })).to.throw(PodCertificateKeyError, /exactly one/);
    const garbage = Buffer.from("0123456789").toString("base64");
    expect(() =>
      readPodCertificateKey({ podUID, pkixPublicKey: garbage, proofOfPossession: garbage }),
    ).to.throw(PodCertificateKeyError, /public key DER/);
    expect(() => readPodCertificateKey({ podUID, stubPKCS10Request: garbage })).to.throw(
      PodCertificateKeyError,
      /stubPKCS10Request DER/,
    );
  });

  it("takes an unset key field as the API serves it (null) and refuses one that is not a string", () => {
    const stub = podKeyFields(podTestKey("ECDSAP256"), podUID, "stub");
    const key = readPodCertificateKey({ podUID, ...stub, pkixPublicKey: null, proofOfPossession: null });
    expect(key.proofVerified).to.equal(true);
    expect(() => readPodCertificateKey({ podUID, ...stub, pkixPublicKey: 42 as unknown as string })).to.throw(
      PodCertificateKeyError,
      /not base64/,
    );
  });

  it("refuses a key field over the API's 10 KiB cap before decoding it", () => {
    const huge = Buffer.alloc(11 * 1024).toString("base64");
    expect(() => readPodCertificateKey({ podUID, stubPKCS10Request: huge })).to.throw(
      PodCertificateKeyError,
      /over 10240/,
    );
  });
});
