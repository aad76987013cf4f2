/**
 * A self-signed TLS serving certificate for the metrics endpoint when the operator gives none, as
 * controller-runtime generates one at start: scrapers either skip verification or are given a
 * certificate of the operator's (--metrics-cert-dir). ECDSA P-256, a year, serverAuth only.
 */
import { generateKeyPairSync } from "node:crypto";
import { keyIdentifier, signCertificate } from "./certificate-builder.js";
import { KeyUsageBit } from "./certificate.js";
import { decodeDer, expectSequence, readBitStringBytes } from "./der-reader.js";
import {
  generateSerialNumber,
  systemIssuanceEnvironment,
  truncateToSecond,
  type IssuanceEnvironment,
} from "./issuance.js";
import { encodeName } from "./names.js";
import { Oid } from "./oids.js";
import { encodePem } from "./pem.js";
import { SoftwareSigningKey } from "./signing-key.js";
import { noSubjectAlternativeNames } from "./subject-alternative-names.js";

/** A TLS serving certificate and its key (PEM): the metrics server's, self-signed or the operator's. */
export interface ServingCertificate {
  certificatePem: string;
  keyPem: string;
}

export async function createSelfSignedServingCertificate(
  commonName: string,
  dnsNames: readonly string[],
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<ServingCertificate> {
  const signingKey = SoftwareSigningKey.fromKeyObject(
    generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey,
  );
  const spki = new Uint8Array(signingKey.publicKey.export({ format: "der", type: "spki" }));
  const publicKeyBits = readBitStringBytes(
    expectSequence(decodeDer(spki), "spki").children[1],
    "subjectPublicKey",
  );
  const now = environment.now().getTime();
  const subject = [{ type: "CN", value: commonName }];
  const der = await signCertificate(
    {
      serialNumber: generateSerialNumber(environment.randomBytes),
      issuerName: encodeName(subject),
      subject,
      notBefore: new Date(truncateToSecond(now - 60_000)),
      notAfter: new Date(truncateToSecond(now + 365 * 86_400_000)),
      subjectPublicKeyInfo: spki,
      subjectKeyIdentifier: keyIdentifier(publicKeyBits),
      subjectAltNames: { ...noSubjectAlternativeNames, dns: [...dnsNames] },
      keyUsageBits: [KeyUsageBit.digitalSignature],
      extendedKeyUsageOids: [Oid.serverAuth],
      basicConstraints: { ca: false },
    },
    signingKey,
  );
  return { certificatePem: encodePem("CERTIFICATE", der), keyPem: signingKey.exportPkcs8Pem() };
}
