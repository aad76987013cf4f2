import { createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { parseCertificate, type ParsedCertificate } from "./certificate.js";
import { CacertsFiles } from "./ca-layouts.js";
import { keyIdentifier, signCertificate } from "./certificate-builder.js";
import { KeyUsageBit } from "./certificate.js";
import { decodeDer, expectSequence, readBitStringBytes } from "./der-reader.js";
import {
  backdateSeconds,
  generateSerialNumber,
  systemIssuanceEnvironment,
  truncateToSecond,
  type IssuanceEnvironment,
} from "./issuance.js";
import { encodeName, type DistinguishedName } from "./names.js";
import { SoftwareSigningKey, type SigningKey } from "./signing-key.js";
import { noSubjectAlternativeNames } from "./subject-alternative-names.js";

/** Key types the toolkit generates for CAs. */
export const certificateAuthorityKeyTypes = [
  "ecdsa-p256",
  "ecdsa-p384",
  "rsa-2048",
  "rsa-3072",
  "rsa-4096",
] as const;
export type CertificateAuthorityKeyType = (typeof certificateAuthorityKeyTypes)[number];

function generatePrivateKey(keyType: CertificateAuthorityKeyType): KeyObject {
  switch (keyType) {
    case "ecdsa-p256":
      return generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    case "ecdsa-p384":
      return generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    default:
      return generateKeyPairSync("rsa", { modulusLength: Number(keyType.slice(4)) }).privateKey;
  }
}

/** The toolkit's name for a CA public key's type, or undefined when it is not one of them. */
function certificateAuthorityKeyTypeOf(publicKey: KeyObject): CertificateAuthorityKeyType | undefined {
  const details = publicKey.asymmetricKeyDetails;
  if (publicKey.asymmetricKeyType === "ec") {
    if (details?.namedCurve === "prime256v1") return "ecdsa-p256";
    if (details?.namedCurve === "secp384r1") return "ecdsa-p384";
    return undefined;
  }
  if (publicKey.asymmetricKeyType === "rsa") {
    const type = `rsa-${details?.modulusLength}`;
    return certificateAuthorityKeyTypes.find((known) => known === type);
  }
  return undefined;
}

function describePublicKey(publicKey: KeyObject): string {
  const details = publicKey.asymmetricKeyDetails;
  if (publicKey.asymmetricKeyType === "ec") return `EC ${details?.namedCurve ?? "unknown curve"}`;
  if (publicKey.asymmetricKeyType === "rsa") return `RSA-${details?.modulusLength}`;
  return publicKey.asymmetricKeyType ?? "unknown";
}

function subjectPublicKeyInfo(key: SigningKey): { spki: Uint8Array; bits: Uint8Array } {
  const spki = new Uint8Array(key.publicKey.export({ format: "der", type: "spki" }));
  return {
    spki,
    bits: readBitStringBytes(expectSequence(decodeDer(spki), "spki").children[1], "subjectPublicKey"),
  };
}

export interface CertificateAuthorityOptions {
  readonly subject: DistinguishedName;
  readonly lifetimeSeconds: number;
  readonly keyType: CertificateAuthorityKeyType;
  /** basicConstraints pathLenConstraint; absent means unlimited. */
  readonly pathLength?: number;
}

/** A CA certificate and the key that goes with it, as PEM files are written. */
export interface GeneratedCertificateAuthority {
  readonly certificate: ParsedCertificate;
  readonly signingKey: SoftwareSigningKey;
  readonly keyPem: string;
}

/** A new self-signed root (the offline root of the CA operator's runbook). */
export function createRootCertificateAuthority(
  options: CertificateAuthorityOptions,
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<GeneratedCertificateAuthority> {
  return createCertificateAuthority(undefined, options, environment);
}

/**
 * An intermediate CA signed by `issuer` (a root or another intermediate), pathLen 0 unless
 * given. Its validity never leaves the issuer's.
 */
export function createIntermediateCertificateAuthority(
  issuer: CertificateAuthorityIssuer,
  options: CertificateAuthorityOptions,
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<GeneratedCertificateAuthority> {
  return createCertificateAuthority(issuer, { ...options, pathLength: options.pathLength ?? 0 }, environment);
}

/** A new CA key and certificate: self-signed without `issuer`. */
async function createCertificateAuthority(
  issuer: CertificateAuthorityIssuer | undefined,
  options: CertificateAuthorityOptions,
  environment: IssuanceEnvironment,
): Promise<GeneratedCertificateAuthority> {
  const signingKey = SoftwareSigningKey.fromKeyObject(generatePrivateKey(options.keyType));
  const { spki, bits } = subjectPublicKeyInfo(signingKey);
  const certificate = await issueCertificateAuthorityCertificate(
    issuer,
    { subject: options.subject, subjectPublicKeyInfo: spki, subjectPublicKey: bits },
    options,
    issuer?.signingKey ?? signingKey,
    environment,
  );
  return { certificate, signingKey, keyPem: signingKey.exportPkcs8Pem() };
}

/** The CA that signs another CA's certificate. */
export interface CertificateAuthorityIssuer {
  readonly certificate: ParsedCertificate;
  readonly signingKey: SigningKey;
}

/** Whose CA certificate is issued: a subject and its public key, as a request carries them. */
export interface CertificateAuthoritySubject {
  readonly subject: DistinguishedName;
  readonly subjectPublicKeyInfo: Uint8Array;
  /** The subjectPublicKey bits, for the subject key identifier. */
  readonly subjectPublicKey: Uint8Array;
}

/**
 * Signs an intermediate CA certificate for a key held elsewhere (an HSM's: only its request left
 * the token), pathLen 0 unless given, validity never beyond the issuer's.
 */
export function signIntermediateCertificate(
  issuer: CertificateAuthorityIssuer,
  subject: CertificateAuthoritySubject,
  options: { readonly lifetimeSeconds: number; readonly pathLength?: number },
  environment: IssuanceEnvironment = systemIssuanceEnvironment,
): Promise<ParsedCertificate> {
  // A CA key as weak as the ones the toolkit refuses to generate (RSA-1024, secp256k1) is refused here too.
  const publicKey = createPublicKey({
    key: Buffer.from(subject.subjectPublicKeyInfo),
    format: "der",
    type: "spki",
  });
  if (certificateAuthorityKeyTypeOf(publicKey) === undefined) {
    return Promise.reject(
      new Error(
        `the request's key is ${describePublicKey(publicKey)}; an intermediate CA key must be one of ${certificateAuthorityKeyTypes.join(", ")}`,
      ),
    );
  }
  return issueCertificateAuthorityCertificate(
    issuer,
    subject,
    { lifetimeSeconds: options.lifetimeSeconds, pathLength: options.pathLength ?? 0 },
    issuer.signingKey,
    environment,
  );
}

async function issueCertificateAuthorityCertificate(
  issuer: CertificateAuthorityIssuer | undefined,
  subject: CertificateAuthoritySubject,
  options: { readonly lifetimeSeconds: number; readonly pathLength?: number },
  signingKey: SigningKey,
  environment: IssuanceEnvironment,
): Promise<ParsedCertificate> {
  const now = environment.now().getTime();
  const notBefore = truncateToSecond(now - backdateSeconds * 1000);
  const notAfter = truncateToSecond(now + options.lifetimeSeconds * 1000);
  const der = await signCertificate(
    {
      serialNumber: generateSerialNumber(environment.randomBytes),
      issuerName: issuer ? issuer.certificate.subjectNameDer : encodeName(subject.subject),
      subject: subject.subject,
      notBefore: new Date(issuer ? Math.max(notBefore, issuer.certificate.notBefore.getTime()) : notBefore),
      notAfter: new Date(issuer ? Math.min(notAfter, issuer.certificate.notAfter.getTime()) : notAfter),
      subjectPublicKeyInfo: subject.subjectPublicKeyInfo,
      subjectKeyIdentifier: keyIdentifier(subject.subjectPublicKey),
      ...(issuer
        ? {
            authorityKeyIdentifier:
              issuer.certificate.subjectKeyIdentifier ?? keyIdentifier(issuer.certificate.subjectPublicKey),
          }
        : {}),
      subjectAltNames: noSubjectAlternativeNames,
      keyUsageBits: [KeyUsageBit.digitalSignature, KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign],
      extendedKeyUsageOids: [],
      basicConstraints: {
        ca: true,
        ...(options.pathLength !== undefined ? { pathLength: options.pathLength } : {}),
      },
    },
    signingKey,
  );
  return parseCertificate(der);
}

/**
 * Istio's cacerts files for an intermediate: ca-cert.pem (the intermediate), ca-key.pem,
 * root-cert.pem (the root, plus any other roots to trust during a rotation) and cert-chain.pem
 * (intermediate, any further intermediates, then the root).
 */
export function cacertsFiles(
  intermediate: GeneratedCertificateAuthority,
  chainAbove: readonly ParsedCertificate[],
  roots: readonly ParsedCertificate[],
): Record<string, string> {
  return {
    [CacertsFiles.certificate]: intermediate.certificate.pem,
    [CacertsFiles.key]: intermediate.keyPem,
    [CacertsFiles.roots]: roots.map((root) => root.pem).join(""),
    [CacertsFiles.chain]: [intermediate.certificate, ...chainAbove].map((c) => c.pem).join(""),
  };
}
