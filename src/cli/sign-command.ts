/** `csr-signer sign`: one-shot offline issuance of a PKCS#10 request with a CA folder (no cluster). */
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { parseLongDuration } from "../api/duration.js";
import type { OfflineSignRefusalReason } from "../api/reasons.js";
import { kubernetesUsages } from "../api/usages.js";
import { loadCertificateAuthority } from "../pki/certificate-authority.js";
import { readCertificateAuthorityFolder } from "../pki/ca-material-files.js";
import { CertificateRequestError, parseCertificateRequest } from "../pki/certificate-request.js";
import { describePublicKey } from "../pki/request-key.js";
import { issueLeafCertificate } from "../pki/issuance.js";
import { defaultKeyAllowList, keyRejection } from "../pki/key-allow-list.js";
import { intersectUsages } from "../pki/key-usages.js";
import { formatName } from "../pki/names.js";
import { isReservedName } from "../policy/reserved-names.js";
import { subjectAltNameSyntaxProblem } from "../policy/subject-alternative-name-syntax.js";
import { writeFilesAtomically } from "./files.js";
import { requiredFlag, UsageError, type CommandIo } from "./io.js";

export const signHelp = `Usage: csr-signer sign --ca DIR [--csr FILE|-] [options]

One-shot issuance of a PKCS#10 request (from FILE or standard input) with the CA in DIR
(cacerts or kubernetes.io/tls layout), as 'cfssl sign' does in the Kubernetes manual flow. The
subject and SANs are copied from the request after its signature is verified; every other
requested extension is dropped. Malformed SANs are refused with the controller's checks:
InvalidDnsName (letter-digit-hyphen labels, "*" only as the whole left-most label),
InvalidEmailAddress (one plain mailbox); and, sign only, InvalidIpAddress (IPv4-mapped IPv6,
::ffff:0:0/96: request the IPv4 address). Writes the chain (leaf, then intermediates) to standard
output.
A subject value naming a privileged Kubernetes identity (system:masters, system:node:..., any value
starting with "system:", and kubeadm:cluster-admins, the group kubeadm binds to cluster-admin; in
any case, spaces around it ignored) is refused, because the API server would grant it those rights.

Options:
  --ca DIR            CA folder (cacerts or kubernetes.io/tls layout; required)
  --csr FILE          the PKCS#10 request; - or absent: standard input
  --usages LIST       comma-separated Kubernetes usage names
                      (default "digital signature,key encipherment,server auth")
  --duration DURATION lifetime, e.g. 24h (default 24h; at least 10m; never beyond the
                      expiry of any certificate of the CA chain, root included;
                      refused within the chain's last 10 minutes)
  --include-root      append the root certificate (the one in cert-chain.pem when
                      several roots verify the chain)
  --allow-reserved-subject
                      issue a subject with system: values and kubeadm:cluster-admins
                      anyway (e.g. a break-glass O=system:masters client certificate
                      for a cluster whose CA this is)
  --out FILE          write the chain to FILE instead of standard output
`;

/** A request `sign` will not issue as it stands; the reason is a CamelCase word, the message names the rule. */
class SignRefusedError extends Error {
  constructor(
    readonly reason: OfflineSignRefusalReason,
    message: string,
  ) {
    super(`${reason}: ${message}`);
    this.name = "SignRefusedError";
  }
}

export async function signCommand(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      ca: { type: "string" },
      csr: { type: "string", default: "-" },
      usages: { type: "string", default: "digital signature,key encipherment,server auth" },
      duration: { type: "string", default: "24h" },
      "include-root": { type: "boolean", default: false },
      "allow-reserved-subject": { type: "boolean", default: false },
      out: { type: "string" },
    },
    strict: true,
  });
  const authority = loadCertificateAuthority(
    readCertificateAuthorityFolder(requiredFlag(values.ca, "--ca")),
    io.environment.now(),
  );
  const request = parseCertificateRequest(
    values.csr === "-" ? await io.readStdin() : readFileSync(values.csr),
  );
  const keyProblem = keyRejection(request.publicKeyDescription, defaultKeyAllowList);
  if (keyProblem) throw new CertificateRequestError("KeyNotAllowed", keyProblem);
  const reserved = request.subject.find((attribute) => isReservedName(attribute.value));
  if (reserved && !values["allow-reserved-subject"]) {
    throw new SignRefusedError(
      "ReservedSubject",
      `subject ${reserved.type}=${JSON.stringify(reserved.value)} is a reserved Kubernetes name ` +
        `(system:... or kubeadm:cluster-admins); pass --allow-reserved-subject to issue it anyway`,
    );
  }
  // The controller's syntax checks: sign has no Signer patterns, but a malformed SAN is never issued.
  const sanProblem = subjectAltNameSyntaxProblem(request.subjectAltNames);
  if (sanProblem) throw new SignRefusedError(sanProblem.reason, sanProblem.message);
  const requestedUsages = values.usages
    .split(",")
    .map((usage) => usage.trim())
    .filter(Boolean);
  const { granted, refused } = intersectUsages(
    requestedUsages,
    kubernetesUsages.filter((u) => u !== "any"),
  );
  if (refused.length > 0)
    throw new UsageError(`usages not allowed for a leaf certificate or unknown: ${refused.join(", ")}`);
  const lifetimeSeconds = parseLongDuration(values.duration);
  const issued = await issueLeafCertificate(
    authority,
    request,
    {
      subject: request.subject,
      subjectAltNames: request.subjectAltNames,
      usages: granted,
      lifetime: {
        requestedSeconds: lifetimeSeconds,
        defaultSeconds: lifetimeSeconds,
        maximumSeconds: lifetimeSeconds,
      },
      includeRoot: values["include-root"],
    },
    io.environment,
  );
  if (values.out) {
    writeFilesAtomically(
      dirname(values.out),
      { [basename(values.out)]: issued.chainPem },
      { overwrite: true, privateFiles: [] },
    );
  } else io.stdout(issued.chainPem);
  io.stderr(
    `issued ${formatName(request.subject) || "(empty subject)"} ${describePublicKey(request.publicKeyDescription)} ` +
      `valid ${issued.notBefore.toISOString()} to ${issued.notAfter.toISOString()}\n`,
  );
}
