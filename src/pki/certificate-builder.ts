import { hash } from "node:crypto";
import {
  bitStringBytes,
  booleanTrue,
  explicit,
  implicitPrimitive,
  namedBitString,
  objectIdentifier,
  octetString,
  sequence,
  smallInteger,
  time,
  unsignedInteger,
} from "./der-writer.js";
import { encodeName, type DistinguishedName } from "./names.js";
import { Oid } from "./oids.js";
import type { SigningKey } from "./signing-key.js";
import {
  countSubjectAlternativeNames,
  encodeGeneralNames,
  type SubjectAlternativeNames,
} from "./subject-alternative-names.js";

/**
 * Everything a certificate says, decided server-side. Nothing here comes from a request's
 * extensions: the SANs are the ones policy granted, the usages the ones it allowed.
 */
export interface CertificateTemplate {
  /** Big-endian magnitude of a positive serial; encoded as minimal DER. */
  readonly serialNumber: Uint8Array;
  /** The issuer's subject exactly as encoded in its certificate (name chaining compares bytes). */
  readonly issuerName: Uint8Array;
  readonly subject: DistinguishedName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly subjectKeyIdentifier: Uint8Array;
  /** Absent only for a self-signed root. */
  readonly authorityKeyIdentifier?: Uint8Array;
  readonly subjectAltNames: SubjectAlternativeNames;
  readonly keyUsageBits: readonly number[];
  readonly extendedKeyUsageOids: readonly string[];
  readonly basicConstraints: { readonly ca: false } | { readonly ca: true; readonly pathLength?: number };
}

/** SHA-1 of the subjectPublicKey bits: RFC 5280 4.2.1.2 method (1), what OpenSSL and Go compute. */
export function keyIdentifier(subjectPublicKey: Uint8Array): Uint8Array {
  return hash("sha1", subjectPublicKey, "buffer"); // one-shot: no Hash object per certificate
}

/** [0] EXPLICIT INTEGER 2: every certificate we write is X.509 v3. */
const versionV3 = explicit(0, smallInteger(2));

function extension(oid: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical
    ? sequence(objectIdentifier(oid), booleanTrue(), octetString(value))
    : sequence(objectIdentifier(oid), octetString(value));
}

/** DER TBSCertificate (X.509 v3) for the template, with `signatureAlgorithm` as its signature field. */
export function encodeTbsCertificate(
  template: CertificateTemplate,
  signatureAlgorithm: Uint8Array,
): Uint8Array {
  const extensions: Uint8Array[] = [];
  const constraints = template.basicConstraints;
  extensions.push(
    extension(
      Oid.basicConstraints,
      true,
      constraints.ca
        ? sequence(
            booleanTrue(),
            ...(constraints.pathLength !== undefined ? [smallInteger(constraints.pathLength)] : []),
          )
        : sequence(),
    ),
  );
  if (template.keyUsageBits.length > 0) {
    extensions.push(extension(Oid.keyUsage, true, namedBitString(template.keyUsageBits)));
  }
  if (template.extendedKeyUsageOids.length > 0) {
    extensions.push(
      extension(
        Oid.extendedKeyUsage,
        false,
        sequence(...template.extendedKeyUsageOids.map(objectIdentifier)),
      ),
    );
  }
  extensions.push(extension(Oid.subjectKeyIdentifier, false, octetString(template.subjectKeyIdentifier)));
  if (template.authorityKeyIdentifier) {
    extensions.push(
      extension(
        Oid.authorityKeyIdentifier,
        false,
        sequence(implicitPrimitive(0, template.authorityKeyIdentifier)),
      ),
    );
  }
  if (countSubjectAlternativeNames(template.subjectAltNames) > 0) {
    // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical (Istio, ztunnel).
    extensions.push(
      extension(
        Oid.subjectAltName,
        template.subject.length === 0,
        encodeGeneralNames(template.subjectAltNames),
      ),
    );
  }
  return sequence(
    versionV3,
    unsignedInteger(template.serialNumber),
    signatureAlgorithm,
    template.issuerName,
    sequence(time(template.notBefore), time(template.notAfter)),
    encodeName(template.subject),
    template.subjectPublicKeyInfo,
    explicit(3, sequence(...extensions)),
  );
}

/** Builds and signs a certificate; returns its DER. */
export async function signCertificate(
  template: CertificateTemplate,
  signingKey: SigningKey,
): Promise<Uint8Array> {
  const tbs = encodeTbsCertificate(template, signingKey.signatureAlgorithm);
  const signature = await signingKey.sign(tbs);
  return sequence(tbs, signingKey.signatureAlgorithm, bitStringBytes(signature));
}
