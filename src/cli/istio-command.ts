import { parseArgs } from "node:util";
import { computeTrustBundle } from "../bundle/trust-bundle.js";
import { signerApiGroup, signerApiVersion, signerPlural, type RecordedRoot } from "../api/signer.js";
import { KubeApi } from "../kube/api-client.js";
import { parseSignerSpec } from "../policy/signer-spec.js";
import { UsageError, type CommandIo } from "./io.js";
import { kubeConfigFromFile } from "./kubeconfig.js";

export const istioMeshConfigHelp = `Usage: csr-signer istio mesh-config [--kubeconfig PATH] [--signer NAME]...

Prints meshConfig caCertificates entries for the cluster's Signers (all, or those named):
one entry per signer name with every root currently in its trust bundle (both roots during a
rotation, in one pem, since entries with the same certSigners overwrite each other), ready to
paste under spec.meshConfig of an IstioOperator.

Options:
  --kubeconfig PATH  kubeconfig to read Signers with (default: $KUBECONFIG; there is no in-cluster
                     fallback, and without either it is an error)
  --signer NAME      a Signer object's name (metadata.name, not its signerName); repeatable
`;

interface SignerListItem {
  metadata?: { name?: string };
  spec?: unknown;
  status?: { trustBundle?: { roots?: RecordedRoot[] } };
}

export async function istioMeshConfig(args: string[], io: CommandIo): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { kubeconfig: { type: "string" }, signer: { type: "string", multiple: true, default: [] } },
    strict: true,
  });
  const path = values.kubeconfig ?? process.env.KUBECONFIG;
  if (!path) throw new UsageError("pass --kubeconfig (or set KUBECONFIG)");
  const kubeConfig = kubeConfigFromFile(path, values.kubeconfig ? "--kubeconfig" : "KUBECONFIG");
  try {
    const list = await KubeApi.for(kubeConfig).get<{ items: SignerListItem[] }>(
      `/apis/${signerApiGroup}/${signerApiVersion}/${signerPlural}`,
    );
    const wanted = new Set(values.signer);
    const entries: string[] = [];
    const now = io.environment.now();
    for (const item of list.items) {
      const name = item.metadata?.name ?? "";
      if (wanted.size > 0 && !wanted.has(name)) continue;
      const spec = parseSignerSpec(item.spec, name);
      // With no "current" roots every recorded root counts as leaving: exactly those still inside their
      // overlap window (and unexpired) remain, which is the bundle the controller publishes.
      const roots = item.status?.trustBundle?.roots ?? [];
      const pem = computeTrustBundle([], roots, now, spec.trustBundle.overlapSeconds).pem;
      if (pem === "") {
        io.stderr(`csr-signer istio mesh-config: Signer ${name} has published no roots yet; skipped\n`);
        continue;
      }
      entries.push(`- pem: |\n${indent(pem, 4)}  certSigners:\n  - ${spec.signerName}\n`);
    }
    io.stdout(`caCertificates:\n${entries.join("")}`);
  } finally {
    await kubeConfig.close();
  }
}

function indent(text: string, spaces: number): string {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => `${" ".repeat(spaces)}${line}\n`)
    .join("");
}
