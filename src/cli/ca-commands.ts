import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { parseCertificate, type ParsedCertificate } from "../pki/certificate.js";
import { CertificateAuthorityError, loadCertificateAuthority } from "../pki/certificate-authority.js";
import { CacertsFiles, TlsSecretFiles } from "../pki/ca-layouts.js";
import { readCertificateAuthorityFolder } from "../pki/ca-material-files.js";
import { parseDistinguishedName } from "../pki/names.js";
import {
  cacertsFiles,
  certificateAuthorityKeyTypes,
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
  type CertificateAuthorityKeyType,
} from "../pki/offline-ca.js";
import { decodeCertificatesPem } from "../pki/pem.js";
import { SoftwareSigningKey } from "../pki/signing-key.js";
import { parseLongDuration } from "../api/duration.js";
import { writeFilesAtomically } from "./files.js";
import { requiredFlag, UsageError, type CommandIo } from "./io.js";

export const rootFiles = { certificate: "root-cert.pem", key: "root-key.pem" } as const;

export function keyType(
  value: string | undefined,
  fallback: CertificateAuthorityKeyType,
): CertificateAuthorityKeyType {
  const type = value ?? fallback;
  if (!(certificateAuthorityKeyTypes as readonly string[]).includes(type)) {
    throw new UsageError(`--key-type must be one of ${certificateAuthorityKeyTypes.join(", ")}`);
  }
  return type as CertificateAuthorityKeyType;
}

export const caRootHelp = `Usage: csr-signer ca root --out DIR [options]

Creates a new offline root CA: DIR/root-cert.pem and DIR/root-key.pem (mode 0600).

Options:
  --subject NAME      distinguished name (default "O=csr-signer,CN=csr-signer root CA")
  --key-type TYPE     ${certificateAuthorityKeyTypes.join(", ")} (default ecdsa-p384)
  --lifetime DURATION e.g. 10y, 3650d (default 10y; at least 1d)
  --force             replace existing files
`;

export async function caRoot(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      out: { type: "string" },
      subject: { type: "string", default: "O=csr-signer,CN=csr-signer root CA" },
      "key-type": { type: "string" },
      lifetime: { type: "string", default: "10y" },
      force: { type: "boolean", default: false },
    },
    strict: true,
  });
  const out = requiredFlag(values.out, "--out");
  const root = await createRootCertificateAuthority(
    {
      subject: parseDistinguishedName(values.subject),
      lifetimeSeconds: caLifetimeSeconds(values.lifetime),
      keyType: keyType(values["key-type"], "ecdsa-p384"),
    },
    io.environment,
  );
  writeFilesAtomically(
    out,
    { [rootFiles.certificate]: root.certificate.pem, [rootFiles.key]: root.keyPem },
    { overwrite: values.force, privateFiles: [rootFiles.key] },
  );
  io.stdout(`wrote ${join(out, rootFiles.certificate)} and ${join(out, rootFiles.key)}\n`);
  io.stdout(describeCertificate(root.certificate, io.environment.now()) + "\n");
}

export const caIntermediateHelp = `Usage: csr-signer ca intermediate --root DIR --out DIR [options]

Creates a per-cluster intermediate CA signed by the root in --root (root-cert.pem, root-key.pem)
and writes Istio's cacerts files into --out: ca-cert.pem, ca-key.pem (0600), root-cert.pem,
cert-chain.pem. Ready for:
  kubectl create secret generic cacerts -n <namespace> --from-file=<out>/ca-cert.pem \\
    --from-file=<out>/ca-key.pem --from-file=<out>/root-cert.pem --from-file=<out>/cert-chain.pem

Options:
  --subject NAME      distinguished name (default "O=csr-signer,CN=csr-signer intermediate CA")
  --key-type TYPE     ${certificateAuthorityKeyTypes.join(", ")} (default ecdsa-p256)
  --lifetime DURATION e.g. 2y (default 1y; at least 1d; never beyond the root's expiry)
  --also-trust FILE   more roots to put in root-cert.pem (a root rotation in progress)
  --force             replace existing files
`;

export async function caIntermediate(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      root: { type: "string" },
      out: { type: "string" },
      subject: { type: "string", default: "O=csr-signer,CN=csr-signer intermediate CA" },
      "key-type": { type: "string" },
      lifetime: { type: "string", default: "1y" },
      "also-trust": { type: "string", multiple: true, default: [] },
      force: { type: "boolean", default: false },
    },
    strict: true,
  });
  const rootDir = requiredFlag(values.root, "--root");
  const out = requiredFlag(values.out, "--out");
  const rootCertificates = readCertificates(join(rootDir, rootFiles.certificate));
  if (rootCertificates.length !== 1) {
    throw new UsageError(`${join(rootDir, rootFiles.certificate)} must hold exactly one certificate`);
  }
  const rootCertificate = rootCertificates[0]!;
  const rootKey = SoftwareSigningKey.fromPem(readFileSync(join(rootDir, rootFiles.key)));
  if (!rootCertificate.x509.publicKey.equals(rootKey.publicKey)) {
    throw new UsageError(
      `${join(rootDir, rootFiles.key)} does not match ${join(rootDir, rootFiles.certificate)}`,
    );
  }
  const extraRoots = values["also-trust"].flatMap(readCertificates);
  const intermediate = await createIntermediateCertificateAuthority(
    { certificate: rootCertificate, signingKey: rootKey },
    {
      subject: parseDistinguishedName(values.subject),
      lifetimeSeconds: caLifetimeSeconds(values.lifetime),
      keyType: keyType(values["key-type"], "ecdsa-p256"),
    },
    io.environment,
  );
  const files = cacertsFiles(intermediate, [rootCertificate], [rootCertificate, ...extraRoots]);
  // Validate exactly as the controller will before anything is written.
  loadCertificateAuthority(files, io.environment.now());
  writeFilesAtomically(out, files, { overwrite: values.force, privateFiles: [CacertsFiles.key] });
  io.stdout(
    `wrote ${Object.keys(files)
      .map((name) => join(out, name))
      .join(", ")}\n`,
  );
  io.stdout(describeCertificate(intermediate.certificate, io.environment.now()) + "\n");
}

export const caInspectHelp = `Usage: csr-signer ca inspect PATH [--warn-within DURATION]

Shows the certificates of a CA folder (cacerts or kubernetes.io/tls layout) or a PEM file:
subject, issuer, serial, validity and SHA-256 fingerprint, then warnings (expiring soon, key
mismatch, chain in the wrong order, chain not verifying). Exits 1 when there are warnings. A
folder without a key file (from \`ca sign-intermediate\`: the key is in an HSM) is inspected
without the key checks.
root-cert.pem and ca.crt are sets of roots (several during a rotation), so their order is free.

Options:
  --warn-within DURATION  warn about certificates expiring within this (default 30d; units s m h d y)
`;

export async function caInspect(args: string[], io: CommandIo): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    options: { "warn-within": { type: "string", default: "30d" } },
    allowPositionals: true,
    strict: true,
  });
  const path = positionals[0];
  if (!path || positionals.length > 1) throw new UsageError("give exactly one folder or PEM file");
  const now = io.environment.now();
  const warnWithinMs = parseLongDuration(values["warn-within"]) * 1000;
  const warnings: string[] = [];
  const groups: [string, ParsedCertificate[]][] = [];
  if (statSync(path).isDirectory()) {
    const files = readCertificateAuthorityFolder(path);
    for (const [name, content] of Object.entries(files)) {
      if (content !== undefined && !name.includes("key"))
        groups.push([name, parseCertificateList(content, name)]);
    }
    const keyKeptElsewhere =
      (files[CacertsFiles.certificate] !== undefined && files[CacertsFiles.key] === undefined) ||
      (files[TlsSecretFiles.certificate] !== undefined && files[TlsSecretFiles.key] === undefined);
    if (keyKeptElsewhere) {
      // `ca sign-intermediate` writes no key: it stays in its HSM. The chain order and expiry
      // checks below still run; matching the key is the controller's job once it opens the token.
      io.stdout("no key file: the key is kept elsewhere (an HSM); key match not checked\n");
      if (files[CacertsFiles.certificate] !== undefined && files[CacertsFiles.roots] === undefined) {
        warnings.push(`MissingFile: cacerts layout: ${CacertsFiles.roots} is missing`);
      }
    } else {
      try {
        loadCertificateAuthority(files, now);
      } catch (error) {
        if (!(error instanceof CertificateAuthorityError)) throw error;
        warnings.push(`${error.reason}: ${error.message}`);
      }
    }
  } else {
    groups.push([path, readCertificates(path)]);
  }
  for (const [name, certificates] of groups) {
    io.stdout(`${name}:\n`);
    // A roots file is a set (several roots during a rotation), not a chain: no order to check.
    const rootSet =
      basename(name) === CacertsFiles.roots ||
      basename(name) === TlsSecretFiles.roots ||
      certificates.every((certificate) => certificate.selfSigned);
    certificates.forEach((certificate, index) => {
      io.stdout(indent(`[${index}] ${describeCertificate(certificate, now)}`) + "\n");
      const next = certificates[index + 1];
      if (
        !rootSet &&
        next &&
        !(certificate.x509.checkIssued(next.x509) && certificate.x509.verify(next.x509.publicKey))
      ) {
        warnings.push(
          `${name}: certificate [${index + 1}] did not issue [${index}] (a chain must go leaf to root)`,
        );
      }
    });
  }
  const seen = new Set<string>();
  for (const certificate of groups.flatMap(([, certificates]) => certificates)) {
    if (seen.has(certificate.fingerprintSha256)) continue;
    seen.add(certificate.fingerprintSha256);
    const remaining = certificate.notAfter.getTime() - now.getTime();
    if (remaining <= 0)
      warnings.push(`"${certificate.subject}" expired at ${certificate.notAfter.toISOString()}`);
    else if (remaining < warnWithinMs) {
      const days = Math.floor(remaining / 86_400_000);
      const left = days >= 1 ? `${days} days` : `${Math.floor(remaining / 3_600_000)} hours`;
      warnings.push(`"${certificate.subject}" expires in ${left} (${certificate.notAfter.toISOString()})`);
    }
  }
  if (warnings.length > 0) {
    io.stdout(`warnings:\n${warnings.map((w) => `  - ${w}`).join("\n")}\n`);
    io.setExitCode(1);
  } else {
    io.stdout("no warnings\n");
  }
}

function readCertificates(path: string): ParsedCertificate[] {
  return parseCertificateList(readFileSync(path), path);
}

function parseCertificateList(content: Uint8Array, name: string): ParsedCertificate[] {
  const certificates = decodeCertificatesPem(Buffer.from(content).toString("utf8"), name).map(
    parseCertificate,
  );
  if (certificates.length === 0) throw new UsageError(`${name} holds no certificate`);
  return certificates;
}

export function describeCertificate(certificate: ParsedCertificate, now: Date): string {
  const days = Math.floor((certificate.notAfter.getTime() - now.getTime()) / 86_400_000);
  return [
    `subject:     ${certificate.subject || "(empty)"}`,
    `issuer:      ${certificate.issuer}`,
    `serial:      ${certificate.serialNumberHex}`,
    `not before:  ${certificate.notBefore.toISOString()}`,
    `not after:   ${certificate.notAfter.toISOString()} (${days >= 0 ? `${days} days left` : "expired"})`,
    `CA:          ${certificate.isCertificateAuthority ? `yes${certificate.pathLength !== undefined ? `, pathLen ${certificate.pathLength}` : ""}` : "no"}${certificate.selfSigned ? ", self-signed" : ""}`,
    `sha256:      ${certificate.fingerprintSha256}`,
  ].join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line, index) => (index === 0 ? `  ${line}` : `      ${line}`))
    .join("\n");
}

/** A CA lifetime from --lifetime: at least a day, so a typo such as "0s" or "1s" never mints a dead CA. */
export function caLifetimeSeconds(text: string): number {
  const seconds = parseLongDuration(text);
  if (seconds < 86_400)
    throw new UsageError(`--lifetime ${text} is shorter than a CA can usefully live (at least 1d)`);
  return seconds;
}
