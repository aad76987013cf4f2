import { KeyUsageBit } from "./certificate.js";
import {
  bitStringBytes,
  booleanTrue,
  namedBitString,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  tlv,
} from "./der-writer.js";
import { encodeName, type DistinguishedName } from "./names.js";
import { Oid } from "./oids.js";
import type { SigningKey } from "./signing-key.js";

/** Extensions an intermediate CA asks for: CA (critical), certificate and CRL signing (critical). */
const caExtensions = sequence(
  sequence(objectIdentifier(Oid.basicConstraints), booleanTrue(), octetString(sequence(booleanTrue()))),
  sequence(
    objectIdentifier(Oid.keyUsage),
    booleanTrue(),
    octetString(namedBitString([KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])),
  ),
);

/**
 * A PKCS#10 certificate request (DER) for a CA key, signed by that key: what the operator takes to
 * the offline root when the key never leaves its HSM. Asks for basicConstraints CA:TRUE and
 * keyUsage keyCertSign, cRLSign (the root decides the path length and lifetime).
 */
export async function buildCertificateRequest(
  key: SigningKey,
  subject: DistinguishedName,
): Promise<Uint8Array> {
  const subjectPublicKeyInfo = new Uint8Array(key.publicKey.export({ format: "der", type: "spki" }));
  const info = sequence(
    smallInteger(0),
    encodeName(subject),
    subjectPublicKeyInfo,
    // attributes [0] IMPLICIT SET OF Attribute: one extensionRequest.
    tlv(0xa0, sequence(objectIdentifier(Oid.extensionRequest), set(caExtensions))),
  );
  const signature = await key.sign(info);
  return sequence(info, key.signatureAlgorithm, bitStringBytes(signature));
}
