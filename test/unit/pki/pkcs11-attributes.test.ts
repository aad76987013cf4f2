import { generateKeyPairSync, sign, verify } from "node:crypto";
import { expect } from "chai";
import { ecdsaSignatureToDer } from "../../../src/pki/pkcs11/ecdsa-signature.js";
import { Pkcs11Error } from "../../../src/pki/pkcs11/errors.js";
import { ecPublicKey, rsaPublicKey } from "../../../src/pki/pkcs11/key-attributes.js";
import { pinFromFile } from "../../../src/pki/pkcs11/pin.js";
import { objectIdentifier, octetString } from "../../../src/pki/der-writer.js";
import { Oid } from "../../../src/pki/oids.js";

describe("PKCS#11 attribute and signature conversions", () => {
  for (const [curve, oid, size] of [
    ["P-256", Oid.prime256v1, 32],
    ["P-384", Oid.secp384r1, 48],
    ["P-521", Oid.secp521r1, 66],
  ] as const) {
    it(`${curve}: CKA_EC_POINT as DER OCTET STRING or raw point gives the same key; r||s becomes DER node:crypto verifies`, () => {
      const pair = generateKeyPairSync("ec", { namedCurve: curve });
      const jwk = pair.publicKey.export({ format: "jwk" });
      const point = Buffer.concat([
        Buffer.of(4),
        Buffer.from(jwk.x!, "base64url"),
        Buffer.from(jwk.y!, "base64url"),
      ]);
      expect(point.length).to.equal(1 + 2 * size);
      const params = Buffer.from(objectIdentifier(oid));
      expect(ecPublicKey(params, Buffer.from(octetString(point)), "k").equals(pair.publicKey)).to.equal(true);
      expect(ecPublicKey(params, point, "k").equals(pair.publicKey)).to.equal(true);

      for (let round = 0; round < 20; round++) {
        const data = Buffer.from(`data ${round}`);
        const concatenated = sign("sha256", data, { key: pair.privateKey, dsaEncoding: "ieee-p1363" });
        expect(verify("sha256", data, pair.publicKey, ecdsaSignatureToDer(concatenated))).to.equal(true);
      }
    });
  }

  it("refuses an unknown curve, a compressed point and an odd-length signature", () => {
    const point = Buffer.concat([Buffer.of(4), Buffer.alloc(64, 1)]);
    expect(() => ecPublicKey(Buffer.from(objectIdentifier("1.3.132.0.10")), point, "k")).to.throw(
      Pkcs11Error,
      /curve/,
    );
    expect(() =>
      ecPublicKey(
        Buffer.from(objectIdentifier(Oid.prime256v1)),
        Buffer.concat([Buffer.of(2), Buffer.alloc(32, 1)]),
        "k",
      ),
    ).to.throw(Pkcs11Error, /not an uncompressed EC point/);
    expect(() => ecPublicKey(Buffer.from(objectIdentifier(Oid.prime256v1)), point, "k")).to.throw(
      Pkcs11Error,
      /not on its curve/,
    );
    expect(() => ecdsaSignatureToDer(Buffer.alloc(63))).to.throw(/not r \|\| s/);
  });

  it("RSA public key from modulus and exponent", () => {
    const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const jwk = pair.publicKey.export({ format: "jwk" });
    const key = rsaPublicKey(Buffer.from(jwk.n!, "base64url"), Buffer.from(jwk.e!, "base64url"), "k");
    expect(key.equals(pair.publicKey)).to.equal(true);
  });

  it("pinFromFile drops one final line ending and refuses empty or multi-line files", () => {
    expect(pinFromFile("1234\n")).to.equal("1234");
    expect(pinFromFile("1234\r\n")).to.equal("1234");
    expect(pinFromFile(" 12 34 ")).to.equal(" 12 34 ");
    expect(() => pinFromFile("\n")).to.throw(/empty/);
    expect(() => pinFromFile("1234\n5678\n")).to.throw(/more than one line/);
  });
});
