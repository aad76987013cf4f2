/**
 * The Node floor of `make bench-controller` (BENCH_CONTENDERS=...,node-floor): the least a CSR signer
 * in Node does per certificate, with csr-signer's own parts (its HTTP client, watch line reader, CSR
 * parser and verifier, issuance) and nothing else: one CSR watch, the request parsed and verified,
 * a certificate issued for what it asks, the status PUT back. No cache, queue, policy, leader
 * election, Events, metrics or logs. Not a signer to deploy: it signs whatever is approved for its
 * signer name. What csr-signer spends beyond this is the price of what it does beyond this.
 *
 * node node-floor.mjs --kubeconfig=PATH --namespace=NS --ca-secret=NAME --signer-name=NAME
 *   --kube-api-qps=N --kube-api-burst=N
 */
import { kubeConfigFromFile } from "../../src/cli/kubeconfig.js";
import { KubeApi } from "../../src/kube/api-client.js";
import { csrPath, csrUrl } from "../../src/kube/csr-api-binding.js";
import { watch } from "../../src/kube/raw-json.js";
import type { KubernetesUsage } from "../../src/api/usages.js";
import type { CertificateAuthorityFiles } from "../../src/pki/ca-layouts.js";
import { loadCertificateAuthority } from "../../src/pki/certificate-authority.js";
import { parseCertificateRequest } from "../../src/pki/certificate-request.js";
import { issueLeafCertificate } from "../../src/pki/issuance.js";

interface Csr {
  metadata: { name: string };
  spec?: { signerName?: string; request?: string; usages?: KubernetesUsage[] };
  status?: { conditions?: { type: string }[]; certificate?: string };
}

const option = (name: string): string => {
  const value = process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  if (!value) throw new Error(`--${name} is required`);
  return value;
};
const signerName = option("signer-name");
const kubeConfig = kubeConfigFromFile(option("kubeconfig"));
// The same client limit as the others at each of the benchmark's limits (csr-signer's --kube-api-qps).
kubeConfig.setRateLimit(Number(option("kube-api-qps")), Number(option("kube-api-burst")));
const api = KubeApi.for(kubeConfig);
const secret = await api.get<{ data: Record<string, string> }>(
  `/api/v1/namespaces/${option("namespace")}/secrets/${option("ca-secret")}`,
);
const files = Object.fromEntries(
  Object.entries(secret.data).map(([file, value]) => [file, Buffer.from(value, "base64").toString("utf8")]),
) as CertificateAuthorityFiles;
const authority = loadCertificateAuthority(files, new Date());
const signing = new Set<string>();

async function sign(csr: Csr): Promise<void> {
  const request = parseCertificateRequest(Buffer.from(csr.spec?.request ?? "", "base64"));
  const issued = await issueLeafCertificate(authority, request, {
    subject: request.subject,
    subjectAltNames: request.subjectAltNames,
    usages: csr.spec?.usages ?? [],
    lifetime: { defaultSeconds: 86_400, maximumSeconds: 86_400 },
    includeRoot: false,
  });
  const certificate = Buffer.from(issued.chainPem).toString("base64");
  await api.replaceDiscardingResponse(csrUrl(csr.metadata.name, "status"), {
    ...csr,
    status: { ...csr.status, certificate },
  });
}

function onEvent(type: string, csr: Csr): void {
  if ((type !== "ADDED" && type !== "MODIFIED") || csr.spec?.signerName !== signerName) return;
  const conditions = csr.status?.conditions ?? [];
  if (csr.status?.certificate || !conditions.some((condition) => condition.type === "Approved")) return;
  if (conditions.some((condition) => condition.type === "Denied" || condition.type === "Failed")) return;
  const name = csr.metadata.name;
  if (signing.has(name)) return;
  signing.add(name);
  sign(csr)
    .catch((error: unknown) => console.error(`${name}: ${String(error)}`))
    .finally(() => signing.delete(name));
}

function watchCsrs(): void {
  void watch(
    api,
    csrPath,
    { allowWatchBookmarks: true },
    64 * 1024,
    onEvent as (type: string, object: never) => void,
    (error) => {
      console.error(`watch ended: ${String(error)}`);
      setTimeout(watchCsrs, 100);
    },
  );
}

process.on("SIGTERM", () => process.exit(0));
watchCsrs();
console.error("node floor signer started");
