import { generateKeyPairSync } from "node:crypto";
import { expect } from "chai";
import {
  CertificateAuthorityError,
  loadCertificateAuthority,
} from "../../../src/pki/certificate-authority.js";
import { Pkcs11Error } from "../../../src/pki/pkcs11/errors.js";
import { rsaPublicKey } from "../../../src/pki/pkcs11/key-attributes.js";
import { signatureProfileFor, SigningKeyError } from "../../../src/pki/signing-key.js";
import { thrownBy } from "../../support/errors.js";
import { opensslSelfSignedCa } from "../../support/openssl.js";
import { craftedRsaModulus, craftedRsaPublicKey } from "../../support/pki.js";

describe("CA key size: RSA CA keys must be 2048, 3072 or 4096 bits", () => {
  for (const bits of [1024, 8192, 16384]) {
    it(`signatureProfileFor refuses RSA-${bits}, naming the rule`, () => {
      const error = thrownBy(SigningKeyError, () => signatureProfileFor(craftedRsaPublicKey(bits)));
      expect(error.kind).to.equal("unsupportedKeySize");
      expect(error.message).to.equal(
        `the CA key is RSA-${bits}; RSA CA keys must be 2048, 3072 or 4096 bits`,
      );
    });

    it(`a PKCS#11 token key of RSA-${bits} is Pkcs11KeyUnsupported, naming the rule`, () => {
      const error = thrownBy(Pkcs11Error, () =>
        rsaPublicKey(craftedRsaModulus(bits), Buffer.from([1, 0, 1]), "token t (key label ca)"),
      );
      expect(error.reason).to.equal("Pkcs11KeyUnsupported");
      expect(error.message).to.equal(
        `token t (key label ca) is RSA-${bits}; RSA CA keys must be 2048, 3072 or 4096 bits`,
      );
    });
  }

  for (const bits of [2048, 3072, 4096]) {
    it(`accepts RSA-${bits} (SHA-256)`, () => {
      expect(signatureProfileFor(craftedRsaPublicKey(bits)).description).to.equal(`RSA-${bits}/SHA-256`);
      const key = rsaPublicKey(craftedRsaModulus(bits), Buffer.from([1, 0, 1]), "k");
      expect(key.asymmetricKeyDetails?.modulusLength).to.equal(bits);
    });
  }

  it("a self-signed RSA-1024 CA in a kubernetes.io/tls Secret is refused as CertificateAuthorityUnsupportedKeySize", () => {
    const files = opensslSelfSignedCa({ subject: "/CN=weak CA", key: ["rsa:1024"] });
    const error = thrownBy(CertificateAuthorityError, () => loadCertificateAuthority(files, new Date()));
    expect(error.reason).to.equal("UnsupportedKeySize");
    expect(error.message).to.equal(
      "tls.key: the CA key is RSA-1024; RSA CA keys must be 2048, 3072 or 4096 bits",
    );
  });

  it("an RSA-2048 key still loads as a software signing key", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    expect(signatureProfileFor(publicKey).hash).to.equal("sha256");
  });
});
