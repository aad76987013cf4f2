import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { CacertsFiles } from "../pki/ca-layouts.js";
import { parseCertificateRequest, CertificateRequestError } from "../pki/certificate-request.js";
import { buildCertificateRequest } from "../pki/certificate-request-builder.js";
import { parseCertificate } from "../pki/certificate.js";
import { formatName, parseDistinguishedName } from "../pki/names.js";
import { certificateAuthorityKeyTypes, signIntermediateCertificate } from "../pki/offline-ca.js";
import { decodeCertificatesPem, encodePem } from "../pki/pem.js";
import {
  generatePkcs11KeyPair,
  openPkcs11SigningKey,
  Pkcs11Error,
  pinFromFile,
  type Pkcs11KeyLocation,
  type Pkcs11SigningKey,
} from "../pki/pkcs11/index.js";
import { SoftwareSigningKey } from "../pki/signing-key.js";
import { caLifetimeSeconds, describeCertificate, keyType, rootFiles } from "./ca-commands.js";
import { writeFilesAtomically } from "./files.js";
import { requiredFlag, UsageError, type CommandIo } from "./io.js";

/** Requests larger than this are not CA requests (one key, a name, two extensions). */
const maxRequestPemBytes = 16_384;

export const caRequestHelp = `Usage: csr-signer ca request --pkcs11-module PATH (--pkcs11-token-label LABEL | --pkcs11-slot N)
                         (--pkcs11-key-label LABEL | --pkcs11-key-id HEX) --pin-file FILE --out FILE [options]

Generates a CA key pair inside a PKCS#11 token (an HSM, a cloud KMS's PKCS#11 library, SoftHSM):
the private key is sensitive, never extractable and stays on the token. Writes a PKCS#10 request
(PEM) for an intermediate CA, signed by that key, to --out: take it to the offline root and sign it
with \`csr-signer ca sign-intermediate\`. Refuses when the token already holds an object with that
label or id (unless --existing-key).

Options:
  --pkcs11-module PATH        the PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so
  --pkcs11-token-label LABEL  the token, by label (or --pkcs11-slot N, by slot id)
  --pkcs11-key-label LABEL    CKA_LABEL of the new key (and/or --pkcs11-key-id HEX, its CKA_ID)
  --pin-file FILE             the user PIN (one line; a trailing newline is ignored)
  --key-type TYPE             ${certificateAuthorityKeyTypes.join(", ")} (default ecdsa-p256)
  --subject NAME              distinguished name (default "O=csr-signer,CN=csr-signer intermediate CA")
  --existing-key              use the key already in the token (a new request for it) instead of generating one;
                              refused unless the token marks it sensitive and not extractable
  --allow-extractable-key     with --existing-key: accept a key the token may reveal or export (warns)
  --force                     replace --out if it exists
`;

export async function caRequest(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      "pkcs11-module": { type: "string" },
      "pkcs11-token-label": { type: "string" },
      "pkcs11-slot": { type: "string" },
      "pkcs11-key-label": { type: "string" },
      "pkcs11-key-id": { type: "string" },
      "pin-file": { type: "string" },
      "key-type": { type: "string" },
      subject: { type: "string", default: "O=csr-signer,CN=csr-signer intermediate CA" },
      "existing-key": { type: "boolean", default: false },
      "allow-extractable-key": { type: "boolean", default: false },
      out: { type: "string" },
      force: { type: "boolean", default: false },
    },
    strict: true,
  });
  const location = keyLocation(values);
  const pinFile = requiredFlag(values["pin-file"], "--pin-file");
  const out = requiredFlag(values.out, "--out");
  const subject = parseDistinguishedName(values.subject);
  const type = keyType(values["key-type"], "ecdsa-p256");
  if (values["existing-key"] && values["key-type"] !== undefined) {
    throw new UsageError("--key-type is for a new key; --existing-key uses the token's key as it is");
  }
  if (values["allow-extractable-key"] && !values["existing-key"]) {
    throw new UsageError(
      "--allow-extractable-key is for --existing-key; a generated key is never extractable",
    );
  }
  // Before the token is touched: a key generated for a request that cannot be written is orphaned.
  if (!values.force && existsSync(out))
    throw new UsageError(`${out} already exists (use --force to replace)`);
  const pin = pinFromFile(readFileSync(pinFile, "utf8"));
  const key = values["existing-key"]
    ? await openPkcs11SigningKey(location, pin)
    : await generatePkcs11KeyPair(location, pin, type).catch((error: unknown) => {
        if (error instanceof Pkcs11Error && /already holds an object/.test(error.message)) {
          throw new Error(
            `${error.message}; to write a request for the key already there, add --existing-key`,
            {
              cause: error,
            },
          );
        }
        throw error;
      });
  try {
    if (values["existing-key"]) checkProtection(key, values["allow-extractable-key"], io);
    const request = encodePem("CERTIFICATE REQUEST", await buildCertificateRequest(key, subject));
    writeFilesAtomically(
      dirname(out),
      { [basename(out)]: request },
      { overwrite: values.force, privateFiles: [] },
    );
    io.stdout(
      `${values["existing-key"] ? "used the key" : "generated a key"} in the token (${key.description}); wrote ${out}\n` +
        `subject:     ${formatName(subject)}\n` +
        `next: csr-signer ca sign-intermediate --root <root folder> --csr ${out} --out <cacerts folder>\n`,
    );
  } finally {
    await key.close();
  }
}

/** An existing key must be one the token keeps to itself, or the operator must say it is accepted. */
function checkProtection(key: Pkcs11SigningKey, allowExtractable: boolean, io: CommandIo): void {
  const weaknesses = [
    key.protection.sensitive ? undefined : "not sensitive (CKA_SENSITIVE false: the token reveals its value)",
    key.protection.extractable ? "extractable (CKA_EXTRACTABLE true: it can be exported wrapped)" : undefined,
  ].filter((weakness) => weakness !== undefined);
  if (weaknesses.length === 0) return;
  const message = `the existing key is ${weaknesses.join(" and ")}`;
  if (!allowExtractable) {
    throw new Error(
      `${message}; a CA key should never leave the token: generate a new one, or add --allow-extractable-key to accept it`,
    );
  }
  io.stderr(`warning: ${message}; accepted because of --allow-extractable-key\n`);
}

function keyLocation(values: {
  "pkcs11-module"?: string;
  "pkcs11-token-label"?: string;
  "pkcs11-slot"?: string;
  "pkcs11-key-label"?: string;
  "pkcs11-key-id"?: string;
}): Pkcs11KeyLocation {
  const modulePath = requiredFlag(values["pkcs11-module"], "--pkcs11-module");
  const tokenLabel = values["pkcs11-token-label"];
  const slot = values["pkcs11-slot"];
  if ((tokenLabel === undefined) === (slot === undefined)) {
    throw new UsageError("give exactly one of --pkcs11-token-label and --pkcs11-slot");
  }
  if (slot !== undefined && !/^\d+$/.test(slot)) throw new UsageError("--pkcs11-slot must be a slot number");
  const keyLabel = values["pkcs11-key-label"];
  const keyIdHex = values["pkcs11-key-id"];
  if (keyLabel === undefined && keyIdHex === undefined) {
    throw new UsageError("give --pkcs11-key-label, --pkcs11-key-id or both");
  }
  if (keyIdHex !== undefined && !/^(?:[0-9a-fA-F]{2})+$/.test(keyIdHex)) {
    throw new UsageError("--pkcs11-key-id must be hexadecimal bytes, e.g. 01a2");
  }
  return {
    modulePath,
    ...(tokenLabel !== undefined ? { tokenLabel } : { slotId: Number(slot) }),
    ...(keyLabel !== undefined ? { keyLabel } : {}),
    ...(keyIdHex !== undefined ? { keyId: Buffer.from(keyIdHex, "hex") } : {}),
  };
}

export const caSignIntermediateHelp = `Usage: csr-signer ca sign-intermediate --root DIR --csr FILE --out DIR [options]

Signs an intermediate CA's request (from \`csr-signer ca request\`, the key staying in its HSM) with
the offline root in --root (root-cert.pem, root-key.pem from \`csr-signer ca root\`). The request's
self-signature is verified first; the certificate gets the request's subject and key, CA:TRUE with
pathLen 0, keyCertSign and cRLSign; no other requested extension is copied. Writes Istio's cacerts
files into --out, without a key: ca-cert.pem, root-cert.pem, cert-chain.pem. Ready for:
  kubectl create secret generic cacerts -n <namespace> --from-file=<out>/ca-cert.pem \\
    --from-file=<out>/root-cert.pem --from-file=<out>/cert-chain.pem

Options:
  --lifetime DURATION e.g. 2y (default 1y; at least 1d; never beyond the root's expiry)
  --force             replace existing files
`;

export async function caSignIntermediate(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      root: { type: "string" },
      csr: { type: "string" },
      out: { type: "string" },
      lifetime: { type: "string", default: "1y" },
      force: { type: "boolean", default: false },
    },
    strict: true,
  });
  const rootDir = requiredFlag(values.root, "--root");
  const csrFile = requiredFlag(values.csr, "--csr");
  const out = requiredFlag(values.out, "--out");
  const lifetimeSeconds = caLifetimeSeconds(values.lifetime);
  const rootCertificatePath = join(rootDir, rootFiles.certificate);
  const rootCertificates = decodeCertificatesPem(
    readFileSync(rootCertificatePath, "utf8"),
    rootCertificatePath,
  ).map(parseCertificate);
  if (rootCertificates.length !== 1)
    throw new UsageError(`${rootCertificatePath} must hold exactly one certificate`);
  const rootCertificate = rootCertificates[0]!;
  const rootKey = SoftwareSigningKey.fromPem(readFileSync(join(rootDir, rootFiles.key)));
  if (!rootCertificate.x509.publicKey.equals(rootKey.publicKey)) {
    throw new UsageError(`${join(rootDir, rootFiles.key)} does not match ${rootCertificatePath}`);
  }
  let request;
  try {
    request = parseCertificateRequest(readFileSync(csrFile), {
      maxPemBytes: maxRequestPemBytes,
      der: { maxDepth: 12, maxNodes: 512 },
    });
  } catch (error) {
    if (error instanceof CertificateRequestError) {
      throw new Error(`${csrFile} is not a valid certificate request (${error.reason}): ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  if (request.subject.length === 0)
    throw new UsageError(`${csrFile} has an empty subject; a CA needs a name`);
  const intermediate = await signIntermediateCertificate(
    { certificate: rootCertificate, signingKey: rootKey },
    request,
    { lifetimeSeconds },
    io.environment,
  );
  if (!intermediate.x509.verify(rootCertificate.x509.publicKey)) {
    throw new Error("the signed certificate does not verify against the root (this is a bug)");
  }
  const files = {
    [CacertsFiles.certificate]: intermediate.pem,
    [CacertsFiles.roots]: rootCertificate.pem,
    [CacertsFiles.chain]: intermediate.pem + rootCertificate.pem,
  };
  writeFilesAtomically(out, files, { overwrite: values.force, privateFiles: [] });
  io.stdout(
    `wrote ${Object.keys(files)
      .map((name) => join(out, name))
      .join(", ")}\n`,
  );
  io.stdout(describeCertificate(intermediate, io.environment.now()) + "\n");
}
