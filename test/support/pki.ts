import {
  X509Certificate,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  booleanTrue,
  bitStringBytes,
  derNull,
  objectIdentifier,
  octetString,
  sequence,
  set,
  smallInteger,
  tlv,
} from "../../src/pki/der-writer.js";
import { decodeDer, type DerNode } from "../../src/pki/der-reader.js";
import { encodeName, type DistinguishedName } from "../../src/pki/names.js";
import { Oid } from "../../src/pki/oids.js";
import { encodePem } from "../../src/pki/pem.js";
import { encodeGeneralNames, type SubjectAlternativeNames } from "../../src/pki/subject-alternative-names.js";
import { openssl, OpensslError } from "./openssl.js";

export type TestKeyType = "ecdsa-p256" | "ecdsa-p384" | "ecdsa-p521" | "rsa-1024" | "rsa-2048" | "rsa-3072";

const keyCache = new Map<string, KeyObject>();

/** A private key of the type; `fresh` skips the per-process cache (RSA generation is slow). */
export function testKey(type: TestKeyType, fresh = false): KeyObject {
  const cached = keyCache.get(type);
  if (cached && !fresh) return cached;
  const key = type.startsWith("ecdsa")
    ? generateKeyPairSync("ec", { namedCurve: `P-${type.slice(7)}` }).privateKey
    : generateKeyPairSync("rsa", { modulusLength: Number(type.slice(4)) }).privateKey;
  if (!fresh) keyCache.set(type, key);
  return key;
}

/**
 * A random odd modulus of exactly `bits` bits: an RSA public key of any size without generating one
 * (minutes for the largest, and seconds per signature). Nothing can sign for it.
 */
export function craftedRsaModulus(bits: number): Buffer {
  const modulus = randomBytes(Math.ceil(bits / 8));
  const topBit = (bits - 1) % 8; // of the first byte
  modulus[0] = (modulus[0]! & ((1 << topBit) - 1)) | (1 << topBit);
  modulus[modulus.length - 1]! |= 0x01;
  return modulus;
}

/** An RSA public key with a crafted modulus of `bits` bits and the exponent 65537. */
export function craftedRsaPublicKey(bits: number): KeyObject {
  return createPublicKey({
    key: { kty: "RSA", n: craftedRsaModulus(bits).toString("base64url"), e: "AQAB" },
    format: "jwk",
  });
}

export interface RawExtension {
  oid: string;
  critical?: boolean;
  value: Uint8Array;
}

export interface TestRequestOptions {
  key: KeyObject;
  subject?: DistinguishedName;
  subjectAltNames?: Partial<SubjectAlternativeNames>;
  /** Extensions added after the SAN extension, verbatim (adversarial shapes). */
  extraExtensions?: RawExtension[];
  /** Whole Extension SEQUENCEs, already encoded, added last (shapes encodeExtension cannot make). */
  encodedExtensions?: Uint8Array[];
  /** Emit the extensionRequest attribute this many times (1 by default). */
  extensionRequestCopies?: number;
  /** Corrupt the signature after signing. */
  breakSignature?: boolean;
  /** Flip a bit of the key's last byte (an EC point's y: then off its curve) before signing. */
  breakPublicKey?: boolean;
  /** The signatureAlgorithm OID instead of the key's own (RSA OIDs get NULL parameters). */
  signatureAlgorithmOid?: string;
  /** The public key the request carries instead of `key`'s (`key` still signs: it does not verify). */
  publicKey?: KeyObject;
  /** The SubjectPublicKeyInfo's algorithm OID instead of the key's own (its parameters kept). */
  publicKeyAlgorithmOid?: string;
}

/**
 * Builds a PKCS#10 request in JS, so tests can make shapes no well-behaved tool emits
 * (duplicate extensions, duplicate attributes, CA:true, bad signatures).
 */
export function buildTestCertificateRequest(options: TestRequestOptions): string {
  const { key } = options;
  let publicKeyDer: Uint8Array = new Uint8Array(
    (options.publicKey ?? createPublicKey(key)).export({ format: "der", type: "spki" }),
  );
  if (options.breakPublicKey) publicKeyDer[publicKeyDer.length - 1]! ^= 0x01;
  if (options.publicKeyAlgorithmOid !== undefined) {
    const [algorithm, keyBits] = decodeDer(publicKeyDer).children as [DerNode, DerNode];
    const parameters = algorithm.children.slice(1).map((node) => node.encoded);
    publicKeyDer = sequence(
      sequence(objectIdentifier(options.publicKeyAlgorithmOid), ...parameters),
      keyBits.encoded,
    );
  }
  const extensions: Uint8Array[] = [];
  const sans = { dns: [], ip: [], uri: [], email: [], ...options.subjectAltNames };
  if (sans.dns.length + sans.ip.length + sans.uri.length + sans.email.length > 0) {
    extensions.push(
      encodeExtension({
        oid: Oid.subjectAltName,
        critical: (options.subject ?? []).length === 0,
        value: encodeGeneralNames(sans),
      }),
    );
  }
  for (const extension of options.extraExtensions ?? []) extensions.push(encodeExtension(extension));
  extensions.push(...(options.encodedExtensions ?? []));
  const copies = options.extensionRequestCopies ?? 1;
  const attributes =
    extensions.length > 0
      ? Array.from({ length: copies }, () =>
          sequence(objectIdentifier(Oid.extensionRequest), set(sequence(...extensions))),
        )
      : [];
  const info = sequence(
    smallInteger(0),
    encodeName(options.subject ?? []),
    publicKeyDer,
    tagged0(...attributes),
  );
  const isRsa = key.asymmetricKeyType === "rsa";
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const hash = isRsa
    ? "sha256"
    : curve === "secp384r1"
      ? "sha384"
      : curve === "secp521r1"
        ? "sha512"
        : "sha256";
  const algorithm = options.signatureAlgorithmOid
    ? options.signatureAlgorithmOid.startsWith("1.2.840.113549.")
      ? sequence(objectIdentifier(options.signatureAlgorithmOid), derNull())
      : sequence(objectIdentifier(options.signatureAlgorithmOid))
    : isRsa
      ? sequence(objectIdentifier(Oid.sha256WithRsa), derNull())
      : sequence(
          objectIdentifier(
            hash === "sha384"
              ? Oid.ecdsaWithSha384
              : hash === "sha512"
                ? Oid.ecdsaWithSha512
                : Oid.ecdsaWithSha256,
          ),
        );
  const signature = new Uint8Array(sign(hash, info, key));
  if (options.breakSignature) signature[signature.length - 1]! ^= 0x01;
  return encodePem("CERTIFICATE REQUEST", sequence(info, algorithm, bitStringBytes(signature)));
}

function tagged0(...attributes: Uint8Array[]): Uint8Array {
  // [0] IMPLICIT SET OF Attribute: a constructed context tag 0.
  const body = set(...attributes);
  const out = body.slice();
  out[0] = 0xa0;
  return out;
}

export function encodeExtension(extension: RawExtension): Uint8Array {
  return extension.critical
    ? sequence(objectIdentifier(extension.oid), booleanTrue(), octetString(extension.value))
    : sequence(objectIdentifier(extension.oid), octetString(extension.value));
}

/**
 * Requests using BER's constructed form of a primitive type (first review, issue 10 item 6), each
 * self-signed so proof of possession holds: only the DER reader stands between them and a leaf.
 * Go's crypto/x509 refuses both; a reader that ignored the constructed bit read the first as
 * SAN DNS:evil.example.com and the second's extension id as 0.6.3.85.29.17.
 */
export function constructedPrimitiveRequests(key: KeyObject): Record<string, string> {
  const evilSan = encodeGeneralNames({ dns: ["evil.example.com"], ip: [], uri: [], email: [] });
  return {
    "constructed OCTET STRING extnValue holding a SAN": buildTestCertificateRequest({
      key,
      subject: [{ type: "CN", value: "alice" }],
      encodedExtensions: [sequence(objectIdentifier(Oid.subjectAltName), tlv(0x24, evilSan))],
    }),
    "constructed OBJECT IDENTIFIER as extnID": buildTestCertificateRequest({
      key,
      subject: [{ type: "CN", value: "alice" }],
      encodedExtensions: [sequence(tlv(0x26, objectIdentifier(Oid.subjectAltName)), octetString(evilSan))],
    }),
  };
}

/** basicConstraints CA:TRUE as a request extension. */
export const caTrueExtension: RawExtension = {
  oid: Oid.basicConstraints,
  critical: true,
  value: sequence(booleanTrue()),
};

// ---------------------------------------------------------------------------------------------
// openssl, the independent judge.

/** Runs a function with a temporary folder, removed afterwards. */
export function withTempDir<T>(run: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "csr-signer-test-"));
  try {
    return run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `openssl verify` of the first certificate of `chainPem` against `rootsPem`, with the rest of
 * the chain as untrusted intermediates. Returns openssl's output; throws with it when it fails.
 */
export function opensslVerify(chainPem: string, rootsPem: string, extraArgs: string[] = []): string {
  return withTempDir((dir) => {
    const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
    writeFileSync(join(dir, "leaf.pem"), blocks[0] ?? "");
    writeFileSync(join(dir, "untrusted.pem"), blocks.slice(1).join(""));
    writeFileSync(join(dir, "roots.pem"), rootsPem);
    const args = ["verify", "-CAfile", join(dir, "roots.pem"), ...extraArgs];
    if (blocks.length > 1) args.push("-untrusted", join(dir, "untrusted.pem"));
    args.push(join(dir, "leaf.pem"));
    try {
      return openssl(args);
    } catch (error) {
      if (!(error instanceof OpensslError)) throw error;
      throw new Error(`openssl verify failed: ${error.output}`);
    }
  });
}

export function opensslText(certificatePem: string): string {
  return openssl(["x509", "-noout", "-text"], certificatePem);
}

/** A CSR made by the openssl CLI itself (the shape real tools emit). */
export function opensslRequest(
  keyType: "ec" | "rsa",
  subject: string,
  addext: string[] = [],
  extraArgs: string[] = [],
): { csrPem: string } {
  return withTempDir((dir) => {
    const keyArgs =
      keyType === "ec" ? ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-newkey", "rsa:2048"];
    const args = ["req", "-new", ...keyArgs, "-nodes", "-keyout", join(dir, "key.pem"), "-subj", subject];
    for (const extension of addext) args.push("-addext", extension);
    args.push(...extraArgs);
    return { csrPem: openssl(args) };
  });
}

// ---------------------------------------------------------------------------------------------
// CA fixtures built with the offline CA toolkit, validated as the controller validates them.

import { loadCertificateAuthority, type CertificateAuthority } from "../../src/pki/certificate-authority.js";
import type { IssuanceEnvironment } from "../../src/pki/issuance.js";
import type { RecordedRoot } from "../../src/api/signer.js";
import {
  cacertsFiles,
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
  type CertificateAuthorityKeyType,
  type GeneratedCertificateAuthority,
} from "../../src/pki/offline-ca.js";

export interface TestCertificateAuthority {
  root: GeneratedCertificateAuthority;
  intermediate: GeneratedCertificateAuthority;
  /** Istio cacerts files for the intermediate. */
  files: Record<string, string>;
  authority: CertificateAuthority;
}

export async function makeTestCertificateAuthority(
  options: {
    rootKeyType?: CertificateAuthorityKeyType;
    intermediateKeyType?: CertificateAuthorityKeyType;
    rootLifetimeSeconds?: number;
    intermediateLifetimeSeconds?: number;
    name?: string;
    environment?: IssuanceEnvironment;
  } = {},
): Promise<TestCertificateAuthority> {
  const name = options.name ?? "test";
  const root = await createRootCertificateAuthority(
    {
      subject: [
        { type: "O", value: "csr-signer tests" },
        { type: "CN", value: `${name} root` },
      ],
      lifetimeSeconds: options.rootLifetimeSeconds ?? 10 * 365 * 86400,
      keyType: options.rootKeyType ?? "ecdsa-p256",
    },
    options.environment,
  );
  const intermediate = await createIntermediateCertificateAuthority(
    root,
    {
      subject: [
        { type: "O", value: "csr-signer tests" },
        { type: "CN", value: `${name} intermediate` },
      ],
      lifetimeSeconds: options.intermediateLifetimeSeconds ?? 365 * 86400,
      keyType: options.intermediateKeyType ?? "ecdsa-p256",
    },
    options.environment,
  );
  const files = cacertsFiles(intermediate, [root.certificate], [root.certificate]);
  return {
    root,
    intermediate,
    files,
    authority: loadCertificateAuthority(files, (options.environment?.now ?? (() => new Date()))()),
  };
}

/** A leaf for `authority` (DNS leaf.example), its chain as PEM. */
export async function createTestLeafCertificate(authority: CertificateAuthority): Promise<string> {
  const { parseCertificateRequest } = await import("../../src/pki/certificate-request.js");
  const { issueLeafCertificate } = await import("../../src/pki/issuance.js");
  const request = parseCertificateRequest(
    buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subjectAltNames: { dns: ["leaf.example"] } }),
  );
  const issued = await issueLeafCertificate(authority, request, {
    subject: [],
    subjectAltNames: request.subjectAltNames,
    usages: ["digital signature", "server auth"],
    lifetime: { defaultSeconds: 3600, maximumSeconds: 3600 },
    includeRoot: false,
  });
  return issued.chainPem;
}

/**
 * An EC P-256 intermediate signed by `issuerCert`/`issuerKey` with openssl, as operators make them:
 * writes ca-key.pem and ca-cert.pem in `dir` and returns the certificate PEM and key PEM.
 */
function opensslIntermediate(
  dir: string,
  options: { subject: string; issuerCert: string; issuerKey: string; serial: string; days: number },
): { certificatePem: string; keyPem: string } {
  const path = (name: string): string => join(dir, name);
  writeFileSync(
    path("ca.ext"),
    "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n" +
      "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
  );
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("ec-key.pem")]);
  openssl(["pkcs8", "-topk8", "-nocrypt", "-in", path("ec-key.pem"), "-out", path("ca-key.pem")]);
  openssl(["req", "-new", "-key", path("ca-key.pem"), "-subj", options.subject, "-out", path("ca.csr")]);
  openssl([
    "x509",
    "-req",
    "-in",
    path("ca.csr"),
    "-CA",
    path(options.issuerCert),
    "-CAkey",
    path(options.issuerKey),
    "-set_serial",
    options.serial,
    "-days",
    String(options.days),
    "-extfile",
    path("ca.ext"),
    "-out",
    path("ca-cert.pem"),
  ]);
  return {
    certificatePem: readFileSync(path("ca-cert.pem"), "utf8"),
    keyPem: readFileSync(path("ca-key.pem"), "utf8"),
  };
}

/**
 * Istio cacerts files whose intermediate outlives its root, as an operator gets from
 * `openssl x509 -req -days 365` under a root with days left (first review, issue 10 item 8):
 * the chain stops verifying when the root expires, whatever the intermediate says.
 */
export async function makeCertificateAuthorityOutlivingItsRoot(options: {
  rootLifetimeSeconds: number;
  intermediateLifetimeDays: number;
}): Promise<{ files: Record<string, string>; rootNotAfter: Date; intermediateNotAfter: Date }> {
  const root = await createRootCertificateAuthority({
    subject: [{ type: "CN", value: "short-lived root" }],
    lifetimeSeconds: options.rootLifetimeSeconds,
    keyType: "ecdsa-p256",
  });
  return withTempDir((dir) => {
    const path = (name: string): string => join(dir, name);
    writeFileSync(path("root-cert.pem"), root.certificate.pem);
    writeFileSync(path("root-key.pem"), root.keyPem);
    const intermediate = opensslIntermediate(dir, {
      subject: "/CN=long-lived intermediate",
      issuerCert: "root-cert.pem",
      issuerKey: "root-key.pem",
      serial: "0x1234",
      days: options.intermediateLifetimeDays,
    });
    const intermediatePem = intermediate.certificatePem;
    return {
      files: {
        "ca-cert.pem": intermediatePem,
        "ca-key.pem": intermediate.keyPem,
        "root-cert.pem": root.certificate.pem,
        "cert-chain.pem": intermediatePem + root.certificate.pem,
      },
      rootNotAfter: root.certificate.notAfter,
      intermediateNotAfter: new Date(new X509Certificate(intermediatePem).validTo),
    };
  });
}

/**
 * A root renewal with both roots kept in root-cert.pem: the same key and subject, a short-lived
 * root that signed the intermediate and a long-lived renewal (second review, issue 10 item 8).
 * Both verify the intermediate; which one bounds a leaf must not depend on their order in the file.
 */
export function makeCertificateAuthorityUnderRenewedRoot(options: {
  shortRootDays: number;
  longRootDays: number;
  intermediateDays: number;
}): {
  shortRootPem: string;
  longRootPem: string;
  intermediatePem: string;
  intermediateKeyPem: string;
  shortRootNotAfter: Date;
  longRootNotAfter: Date;
} {
  return withTempDir((dir) => {
    const path = (name: string): string => join(dir, name);
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path("root-ec.pem")]);
    const selfSigned = (days: number, out: string): string => {
      openssl([
        "req",
        "-x509",
        "-key",
        path("root-ec.pem"),
        "-subj",
        "/CN=renewed root",
        "-days",
        String(days),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        path(out),
      ]);
      return readFileSync(path(out), "utf8");
    };
    const shortRootPem = selfSigned(options.shortRootDays, "short.pem");
    const longRootPem = selfSigned(options.longRootDays, "long.pem");
    const intermediate = opensslIntermediate(dir, {
      subject: "/CN=intermediate",
      issuerCert: "short.pem",
      issuerKey: "root-ec.pem",
      serial: "0x4321",
      days: options.intermediateDays,
    });
    return {
      shortRootPem,
      longRootPem,
      intermediatePem: intermediate.certificatePem,
      intermediateKeyPem: intermediate.keyPem,
      shortRootNotAfter: new Date(new X509Certificate(shortRootPem).validTo),
      longRootNotAfter: new Date(new X509Certificate(longRootPem).validTo),
    };
  });
}

/** `count` roots of fresh test CAs as a Signer's status.trustBundle records them. */
export async function testRecordedRoots(name: string, count: number): Promise<RecordedRoot[]> {
  const roots: RecordedRoot[] = [];
  for (let i = 0; i < count; i++) {
    const root = (await makeTestCertificateAuthority({ name: `${name}-${i}` })).root.certificate;
    roots.push({
      fingerprintSha256: root.fingerprintSha256,
      subject: root.subject,
      notAfter: root.notAfter.toISOString(),
      pem: root.pem,
    });
  }
  return roots;
}
