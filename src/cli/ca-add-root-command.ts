import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CertificateAuthorityError, loadCertificateAuthority } from "../pki/certificate-authority.js";
import { CacertsFiles, TlsSecretFiles, type CertificateAuthorityFiles } from "../pki/ca-layouts.js";
import { readCertificateAuthorityFolder } from "../pki/ca-material-files.js";
import { addRoots, RootSetError, type RootSetChange } from "../pki/root-set.js";
import { writeFilesAtomically } from "./files.js";
import { requiredFlag, UsageError, type CommandIo } from "./io.js";

export const caAddRootHelp = `Usage: csr-signer ca add-root --root NEW.pem (--folder DIR | --secret FILE)

Step A of a root rotation: adds the new root(s) in NEW.pem to the trusted roots of an existing CA
(root-cert.pem of a cacerts folder or Secret, ca.crt of a kubernetes.io/tls one), after the roots
already there, without duplicates. Each new certificate must be a self-signed CA certificate that
has not expired; the result must load as the controller would load it. The Signer then publishes
both roots; once they have been published for spec.trustBundle.minimumRootPublication, step B (an
intermediate of the new root, \`ca intermediate --also-trust\`) may sign.

  --folder DIR   rewrite DIR/root-cert.pem (or DIR/ca.crt) in place, atomically
  --secret FILE  a Secret as JSON ("-": standard input), e.g. from \`kubectl get secret -o json\`;
                 prints the patched Secret as JSON for \`kubectl replace -f -\` (its
                 resourceVersion is kept, so a Secret changed meanwhile is refused)

  kubectl -n csr-signer get secret foo-cacerts -o json |
    csr-signer ca add-root --secret - --root new-root.pem | kubectl replace -f -
`;

export async function caAddRoot(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { root: { type: "string" }, folder: { type: "string" }, secret: { type: "string" } },
    strict: true,
  });
  const newRootsPem = readFileSync(requiredFlag(values.root, "--root"), "utf8");
  if ((values.folder === undefined) === (values.secret === undefined))
    throw new UsageError("give exactly one of --folder or --secret");
  const now = io.environment.now();
  if (values.folder !== undefined) {
    const dir = values.folder;
    const files = readCertificateAuthorityFolder(dir);
    const rootsName = rootsFileOf(files, dir);
    const change = merged(files, rootsName, newRootsPem, now);
    if (change.added.length > 0)
      writeFilesAtomically(dir, { [rootsName]: change.pem }, { overwrite: true, privateFiles: [] });
    report(change, join(dir, rootsName), io.stdout);
    return;
  }
  const secretText = values.secret === "-" ? await io.readStdin() : readFileSync(values.secret!, "utf8");
  const secret = parseSecret(secretText);
  const files: Record<string, Uint8Array> = Object.fromEntries(
    Object.entries(secret.data).map(([name, value]) => [name, Buffer.from(value, "base64")]),
  );
  const rootsName = rootsFileOf(files, `Secret ${secret.metadata?.name ?? ""}`);
  const change = merged(files, rootsName, newRootsPem, now);
  const { managedFields: _managed, ...metadata } = secret.metadata ?? {};
  const patched = {
    ...secret,
    metadata,
    data: { ...secret.data, [rootsName]: Buffer.from(change.pem).toString("base64") },
  };
  io.stdout(JSON.stringify(patched, null, 2) + "\n");
  report(change, `data["${rootsName}"]`, io.stderr);
}

/** Which file holds the roots: root-cert.pem (cacerts) or ca.crt (kubernetes.io/tls). */
function rootsFileOf(files: CertificateAuthorityFiles, where: string): string {
  if (files[CacertsFiles.certificate] !== undefined || files[CacertsFiles.roots] !== undefined)
    return CacertsFiles.roots;
  if (files[TlsSecretFiles.certificate] !== undefined) return TlsSecretFiles.roots;
  throw new UsageError(
    `${where} holds no CA (neither ${CacertsFiles.certificate} nor ${TlsSecretFiles.certificate})`,
  );
}

/** The roots after the change, checked as the controller will load them (key checks when a key is there). */
function merged(
  files: CertificateAuthorityFiles,
  rootsName: string,
  newRootsPem: string,
  now: Date,
): RootSetChange {
  const existing = files[rootsName];
  let change: RootSetChange;
  try {
    change = addRoots(existing === undefined ? "" : Buffer.from(existing).toString("utf8"), newRootsPem, now);
  } catch (error) {
    if (error instanceof RootSetError) throw new UsageError(error.message);
    throw error;
  }
  const keyName = rootsName === CacertsFiles.roots ? CacertsFiles.key : TlsSecretFiles.key;
  if (files[keyName] !== undefined) {
    try {
      loadCertificateAuthority({ ...files, [rootsName]: change.pem }, now);
    } catch (error) {
      if (!(error instanceof CertificateAuthorityError)) throw error;
      throw new Error(`the CA would not load with the new roots (${error.reason}): ${error.message}`);
    }
  }
  return change;
}

function report(change: RootSetChange, where: string, write: (text: string) => void): void {
  for (const root of change.added)
    write(`added "${root.subject}" (sha256 ${root.fingerprintSha256}) to ${where}\n`);
  for (const root of change.alreadyPresent)
    write(`"${root.subject}" (sha256 ${root.fingerprintSha256}) is already in ${where}\n`);
}

interface SecretJson {
  metadata?: { name?: string; managedFields?: unknown } & Record<string, unknown>;
  data: Record<string, string>;
  [field: string]: unknown;
}

function parseSecret(text: string): SecretJson {
  let secret: unknown;
  try {
    secret = JSON.parse(text);
  } catch {
    throw new UsageError("--secret: not JSON (use kubectl get secret NAME -o json)");
  }
  const object = secret as Partial<SecretJson> & { kind?: unknown };
  if (object?.kind !== "Secret" || typeof object.data !== "object" || object.data === null)
    throw new UsageError("--secret: not a Secret with data");
  return object as SecretJson;
}
