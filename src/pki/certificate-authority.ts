/**
 * CA material validated: the cacerts and kubernetes.io/tls layouts, the certificates' count and size
 * limits, the key matching the signing certificate, the chain up to a root, and validity. The
 * layouts' file names are ca-layouts.ts; reading the files from a folder, and their size cap,
 * ca-material-files.ts.
 */
import type { KeyObject } from "node:crypto";
import { parseCertificate, KeyUsageBit, type ParsedCertificate } from "./certificate.js";
import { keyIdentifier } from "./certificate-builder.js";
import { decodeCertificatesPem } from "./pem.js";
import { SigningKeyError, SoftwareSigningKey, type SigningKey } from "./signing-key.js";
import type { CertificateAuthorityProblem } from "../api/reasons.js";
import {
  CacertsFiles,
  caKeyFileOf,
  fileText,
  isCacertsLayout,
  TlsSecretFiles,
  type CertificateAuthorityFiles,
  type CertificateAuthorityLayout,
} from "./ca-layouts.js";

/** Why CA material was refused; the message names the file and the check, never key bytes. */
export class CertificateAuthorityError extends Error {
  constructor(
    readonly reason: CertificateAuthorityProblem,
    message: string,
  ) {
    super(message);
    this.name = "CertificateAuthorityError";
  }
}

/** A validated CA: a signing certificate and key, the intermediates above it, and the trusted roots. */
export interface CertificateAuthority {
  readonly layout: CertificateAuthorityLayout;
  readonly signingCertificate: ParsedCertificate;
  readonly signingKey: SigningKey;
  /** Certificates between the signing certificate and its root, nearest first (no roots). */
  readonly intermediates: readonly ParsedCertificate[];
  /**
   * The root the signing certificate chains to, appended when a grant includes the root. When
   * several roots verify the top of the chain (a renewed root: same key and subject), the one in
   * cert-chain.pem (or tls.crt) is preferred, then the earliest NotAfter; never the file order.
   */
  readonly anchor: ParsedCertificate;
  /** Every root of the material (several during a root rotation), anchor included. */
  readonly roots: readonly ParsedCertificate[];
  /**
   * The earliest NotAfter from the signing certificate up to and including the anchor and every
   * other unexpired root that verifies the top of the chain (a client may hold any of them): the
   * chain stops verifying then for some client, so no leaf may outlive it (an intermediate may
   * outlive its root). Expired roots are left out: no client verifies anything with them.
   */
  readonly notAfter: Date;
  /** Key identifier for authorityKeyIdentifier of issued certificates. */
  readonly keyIdentifier: Uint8Array;
  /** Signing certificate then intermediates as PEM, what follows a leaf in status.certificate. */
  readonly chainPem: string;
}

/**
 * Most roots in one CA material's roots file. A rotation needs 2 (the old root and the new one, as
 * `csr-signer ca add-root` writes them); 4 leaves room for a renewed root (same key, new validity)
 * beside them. Every root is published by every Signer using the material and verified against
 * the chain on every load: a 64 KiB file would otherwise carry about 100.
 */
export const maximumRootsPerCertificateAuthority = 4;
/**
 * Most certificates in the chain file (cert-chain.pem, or tls.crt): the signing certificate, its
 * intermediates and a root. Finding the chain tries every certificate against every other.
 */
export const maximumChainCertificates = 8;

/**
 * Largest CA certificate (DER bytes) and subject (characters) accepted. A tenant writing its own CA
 * Secret must not make the Signer's status unwritable: a root's PEM goes into
 * status.trustBundle.roots[].pem (16384 characters in the CRD) and the subject into condition
 * messages (32768). Real CA certificates are 1-2 KB.
 */
export const maximumCertificateDerBytes = 8192;
export const maximumSubjectCharacters = 1024;

function parseCertificates(
  file: Uint8Array | string | undefined,
  name: string,
  maximum = maximumChainCertificates,
): ParsedCertificate[] {
  if (file === undefined) return [];
  let blocks: Uint8Array[];
  try {
    blocks = decodeCertificatesPem(fileText(file), name);
  } catch (error) {
    throw new CertificateAuthorityError("MalformedCertificate", `${name}: ${(error as Error).message}`);
  }
  // Counted before any certificate is parsed or verified.
  if (blocks.length > maximum)
    throw new CertificateAuthorityError(
      "TooManyCertificates",
      `${name} holds ${blocks.length} certificates; at most ${maximum} are accepted`,
    );
  let certificates: ParsedCertificate[];
  try {
    certificates = blocks.map((der) => {
      const certificate = parseCertificate(der);
      // OpenSSL decodes the public key lazily; one it cannot decode must be refused here, naming
      // the file, not thrown as a plain Error by whoever first uses the key.
      void certificate.x509.publicKey;
      return certificate;
    });
  } catch (error) {
    throw new CertificateAuthorityError("MalformedCertificate", `${name}: ${(error as Error).message}`);
  }
  blocks.forEach((der, index) => {
    if (
      der.length > maximumCertificateDerBytes ||
      certificates[index]!.subject.length > maximumSubjectCharacters
    )
      throw new CertificateAuthorityError(
        "TooLarge",
        `${name}: certificate ${index + 1} is ${der.length} bytes with a subject of ${certificates[index]!.subject.length} characters; at most ${maximumCertificateDerBytes} bytes and ${maximumSubjectCharacters} characters are accepted`,
      );
  });
  return certificates;
}

function describe(certificate: ParsedCertificate): string {
  return `"${certificate.subject}" (serial ${certificate.serialNumberHex})`;
}

/** Where the CA key comes from when it is not a plain key file. */
export interface CertificateAuthorityKeyOptions {
  /**
   * A key held elsewhere (a PKCS#11 token): the files carry certificates only, and a key file
   * among them is refused (UnexpectedKeyFile) since which key signs would be ambiguous.
   */
  signingKey?: SigningKey;
  /** Where the key is, for messages ("token mesh-ca (key label ca)"). */
  signingKeyLocation?: string;
  /** The passphrase of an encrypted key file (ENCRYPTED PRIVATE KEY), decrypted on this thread (the CLI). */
  keyPassphrase?: string;
  /**
   * The key file already decrypted (encrypted-key-file.ts, off the event loop): used instead of
   * parsing the key file. The caller vouches that it is that file's key.
   */
  decryptedKey?: KeyObject;
}

/**
 * Loads and validates CA material from Istio's cacerts layout (ca-cert.pem, ca-key.pem,
 * root-cert.pem, cert-chain.pem) or a kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt).
 * `now` checks validity. Throws CertificateAuthorityError naming the file and the check.
 */
export function loadCertificateAuthority(
  files: CertificateAuthorityFiles,
  now: Date,
  options: CertificateAuthorityKeyOptions = {},
): CertificateAuthority {
  const keyElsewhere = options.signingKey;
  let layout: CertificateAuthorityLayout;
  let signingCertificates: ParsedCertificate[];
  const { name: keyFileName, file: keyFile } = caKeyFileOf(files);
  let roots: ParsedCertificate[];
  let rootsFileName: string;
  let chain: ParsedCertificate[];
  if (isCacertsLayout(files)) {
    layout = "cacerts";
    const required = keyElsewhere
      ? [CacertsFiles.certificate, CacertsFiles.roots]
      : [CacertsFiles.certificate, CacertsFiles.key, CacertsFiles.roots];
    for (const name of required) {
      if (files[name] === undefined)
        throw new CertificateAuthorityError("MissingFile", `cacerts layout: ${name} is missing`);
    }
    signingCertificates = parseCertificates(files[CacertsFiles.certificate], CacertsFiles.certificate);
    rootsFileName = CacertsFiles.roots;
    roots = parseCertificates(
      files[CacertsFiles.roots],
      CacertsFiles.roots,
      maximumRootsPerCertificateAuthority,
    );
    chain = parseCertificates(files[CacertsFiles.chain], CacertsFiles.chain);
  } else if (files[TlsSecretFiles.certificate] !== undefined || files[TlsSecretFiles.key] !== undefined) {
    layout = "kubernetes.io/tls";
    for (const name of keyElsewhere
      ? [TlsSecretFiles.certificate]
      : [TlsSecretFiles.certificate, TlsSecretFiles.key]) {
      if (files[name] === undefined)
        throw new CertificateAuthorityError("MissingFile", `kubernetes.io/tls layout: ${name} is missing`);
    }
    // tls.crt may carry intermediates after the CA certificate, as cert-manager writes it.
    const tlsChain = parseCertificates(files[TlsSecretFiles.certificate], TlsSecretFiles.certificate);
    signingCertificates = tlsChain.slice(0, 1);
    chain = tlsChain;
    rootsFileName = TlsSecretFiles.roots;
    roots = parseCertificates(
      files[TlsSecretFiles.roots],
      TlsSecretFiles.roots,
      maximumRootsPerCertificateAuthority,
    );
    // A self-signed CA in tls.crt with no ca.crt is its own root.
    if (roots.length === 0 && signingCertificates[0]?.selfSigned) roots = [signingCertificates[0]];
  } else {
    throw new CertificateAuthorityError(
      "UnknownLayout",
      keyElsewhere
        ? `no CA certificate found: expected ${CacertsFiles.certificate} and ${CacertsFiles.roots} (cacerts) or ${TlsSecretFiles.certificate} (kubernetes.io/tls)`
        : `no CA files found: expected ${CacertsFiles.certificate} and ${CacertsFiles.key} (cacerts) or ${TlsSecretFiles.certificate} and ${TlsSecretFiles.key} (kubernetes.io/tls)`,
    );
  }
  if (keyElsewhere && keyFile !== undefined) {
    throw new CertificateAuthorityError(
      "UnexpectedKeyFile",
      `${keyFileName} is present but the CA key is in ${options.signingKeyLocation ?? "a token"}; remove ${keyFileName}`,
    );
  }

  const certificateFileName = layout === "cacerts" ? CacertsFiles.certificate : TlsSecretFiles.certificate;
  if (signingCertificates.length !== 1 && layout === "cacerts") {
    throw new CertificateAuthorityError(
      "MalformedCertificate",
      `${certificateFileName} must hold exactly one certificate, found ${signingCertificates.length}`,
    );
  }
  const signingCertificate = signingCertificates[0];
  if (!signingCertificate)
    throw new CertificateAuthorityError(
      "MalformedCertificate",
      `${certificateFileName} holds no certificate`,
    );
  if (roots.length === 0)
    throw new CertificateAuthorityError("MissingFile", `${rootsFileName} holds no root certificate`);

  let signingKey: SigningKey;
  if (keyElsewhere) signingKey = keyElsewhere;
  else
    try {
      signingKey = options.decryptedKey
        ? SoftwareSigningKey.fromKeyObject(options.decryptedKey)
        : SoftwareSigningKey.fromPem(keyFile!, options.keyPassphrase);
    } catch (error) {
      if (!(error instanceof SigningKeyError)) throw error;
      throw new CertificateAuthorityError(
        error.kind === "unsupportedKeySize" ? "UnsupportedKeySize" : "MalformedKey",
        `${keyFileName}: ${error.message}`,
      );
    }
  if (!signingCertificate.x509.publicKey.equals(signingKey.publicKey)) {
    throw new CertificateAuthorityError(
      "KeyMismatch",
      keyElsewhere
        ? `the certificate in ${certificateFileName} ${describe(signingCertificate)} is not for the key in ${options.signingKeyLocation ?? "the token"}`
        : `${keyFileName} does not match the certificate in ${certificateFileName} ${describe(signingCertificate)}`,
    );
  }
  checkIsIssuingCertificateAuthority(signingCertificate, certificateFileName);
  for (const root of roots) {
    if (!root.isCertificateAuthority || !root.selfSigned) {
      throw new CertificateAuthorityError(
        "NotACertificateAuthority",
        `${rootsFileName}: ${describe(root)} is not a self-signed CA certificate`,
      );
    }
  }

  const { intermediates, anchor, issuingRoots } = buildChain(
    signingCertificate,
    chain,
    roots,
    rootsFileName,
    now,
  );
  checkChainValidity([signingCertificate, ...intermediates, anchor], now);
  const unexpiredIssuingRoots = issuingRoots.filter((root) => now < root.notAfter);
  for (const certificate of intermediates) checkIsIssuingCertificateAuthority(certificate, "cert-chain.pem");

  return {
    layout,
    signingCertificate,
    signingKey,
    intermediates,
    anchor,
    roots,
    notAfter: earliestNotAfter([signingCertificate, ...intermediates, anchor, ...unexpiredIssuingRoots]),
    keyIdentifier:
      signingCertificate.subjectKeyIdentifier ?? keyIdentifier(signingCertificate.subjectPublicKey),
    chainPem: signingCertificate.selfSigned
      ? ""
      : [signingCertificate, ...intermediates].map((c) => c.pem).join(""),
  };
}

/**
 * Throws NotYetValid or Expired unless every certificate from the signing certificate up to its root
 * is valid at `now`. Material that loaded once is checked again as time passes (it expires in place).
 */
export function checkCertificateAuthorityValidity(authority: CertificateAuthority, now: Date): void {
  checkChainValidity([authority.signingCertificate, ...authority.intermediates, authority.anchor], now);
}

function earliestNotAfter(certificates: readonly ParsedCertificate[]): Date {
  return new Date(Math.min(...certificates.map((certificate) => certificate.notAfter.getTime())));
}

function checkChainValidity(certificates: readonly ParsedCertificate[], now: Date): void {
  for (const certificate of certificates) {
    if (now < certificate.notBefore) {
      throw new CertificateAuthorityError(
        "NotYetValid",
        `${describe(certificate)} is not valid before ${certificate.notBefore.toISOString()}`,
      );
    }
    if (now >= certificate.notAfter) {
      throw new CertificateAuthorityError(
        "Expired",
        `${describe(certificate)} expired at ${certificate.notAfter.toISOString()}`,
      );
    }
  }
}

function checkIsIssuingCertificateAuthority(certificate: ParsedCertificate, fileName: string): void {
  if (!certificate.isCertificateAuthority) {
    throw new CertificateAuthorityError(
      "NotACertificateAuthority",
      `${fileName}: ${describe(certificate)} is not a CA (basicConstraints CA:FALSE or absent)`,
    );
  }
  if (certificate.keyUsageBits && !certificate.keyUsageBits.includes(KeyUsageBit.keyCertSign)) {
    throw new CertificateAuthorityError(
      "NotACertificateAuthority",
      `${fileName}: ${describe(certificate)} lacks keyUsage keyCertSign`,
    );
  }
}

/**
 * Walks from the signing certificate up through the supplied chain certificates to the roots,
 * checking every signature with OpenSSL. Order in cert-chain.pem does not matter; roots found in
 * it only break ties between roots (trust comes only from the roots file). Returns every root that
 * verifies the top of the chain and the one chosen as anchor, whatever their order in the file.
 */
function buildChain(
  signingCertificate: ParsedCertificate,
  chain: readonly ParsedCertificate[],
  roots: readonly ParsedCertificate[],
  rootsFileName: string,
  now: Date,
): { intermediates: ParsedCertificate[]; anchor: ParsedCertificate; issuingRoots: ParsedCertificate[] } {
  const candidates = chain.filter(
    (c) => !c.selfSigned && c.fingerprintSha256 !== signingCertificate.fingerprintSha256,
  );
  const rootsInChain = new Set(chain.filter((c) => c.selfSigned).map((c) => c.fingerprintSha256));
  const intermediates: ParsedCertificate[] = [];
  let current = signingCertificate;
  for (let depth = 0; depth <= candidates.length; depth++) {
    const top = current;
    const issuingRoots = roots.filter((root) => issued(root, top));
    if (issuingRoots.length > 0)
      return { intermediates, anchor: chooseAnchor(issuingRoots, rootsInChain, now), issuingRoots };
    const next = candidates.find(
      (candidate) => !intermediates.includes(candidate) && issued(candidate, current),
    );
    if (!next) break;
    intermediates.push(next);
    current = next;
  }
  throw new CertificateAuthorityError(
    "ChainDoesNotVerify",
    `${describe(current)} (issuer "${current.issuer}") does not chain to a root in ${rootsFileName}`,
  );
}

/**
 * One of several roots verifying the same certificate (a renewed root shares key and subject),
 * chosen by content alone: valid now first, then named in the chain file, then the earliest
 * NotAfter (the one that bounds leaves), then the fingerprint.
 */
function chooseAnchor(
  issuingRoots: readonly ParsedCertificate[],
  rootsInChain: ReadonlySet<string>,
  now: Date,
): ParsedCertificate {
  const rank = (root: ParsedCertificate): [number, number, number] => [
    root.notBefore <= now && now < root.notAfter ? 0 : 1,
    rootsInChain.has(root.fingerprintSha256) ? 0 : 1,
    root.notAfter.getTime(),
  ];
  return [...issuingRoots].sort((a, b) => {
    const [rankA, rankB] = [rank(a), rank(b)];
    for (let index = 0; index < rankA.length; index++) {
      if (rankA[index] !== rankB[index]) return rankA[index]! - rankB[index]!;
    }
    return a.fingerprintSha256 < b.fingerprintSha256 ? -1 : a.fingerprintSha256 > b.fingerprintSha256 ? 1 : 0;
  })[0]!;
}

function issued(issuer: ParsedCertificate, subject: ParsedCertificate): boolean {
  return subject.x509.checkIssued(issuer.x509) && subject.x509.verify(issuer.x509.publicKey);
}
