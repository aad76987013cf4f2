import { parseArgs } from "node:util";
import { caCertificatesBlock } from "../bundle/istio-mesh-config.js";
import { signerApiGroup, signerApiVersion, signerPlural, type RecordedRoot } from "../api/signer.js";
import { KubeApi } from "../kube/api-client.js";
import { UsageError, type CommandIo } from "./io.js";
import { kubeConfigFromFile } from "./kubeconfig.js";

export const istioMeshConfigHelp = `Usage: csr-signer istio mesh-config [--kubeconfig PATH] [--signer NAME]...

Prints meshConfig caCertificates entries for the cluster's Signers (all, or those named):
one entry per signer name with every root currently in its trust bundle (both roots during a
rotation, in one pem, since entries with the same certSigners overwrite each other), ready to
paste under spec.meshConfig of an IstioOperator. It applies no size budget: it prints every
Signer, while the controller's --istio-mesh-config sync leaves out a Signer whose roots would push
the ConfigMap past 900 KiB (that Signer is Degraded with IstioMeshConfigTooLarge).

Options:
  --kubeconfig PATH  kubeconfig to read Signers with (default: $KUBECONFIG; there is no in-cluster
                     fallback, and without either it is an error)
  --signer NAME      a Signer object's name (metadata.name, not its signerName); repeatable
`;

interface SignerListItem {
  metadata?: { name?: string; creationTimestamp?: string };
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
    const block = caCertificatesBlock(
      list.items
        .map((item) => ({
          name: item.metadata?.name ?? "",
          spec: item.spec,
          roots: item.status?.trustBundle?.roots ?? [],
          createdAt: item.metadata?.creationTimestamp,
        }))
        .filter((signer) => wanted.size === 0 || wanted.has(signer.name)),
      io.environment.now(),
    );
    for (const name of block.duplicates)
      io.stderr(
        `csr-signer istio mesh-config: Signer ${name} names the signerName of an older Signer; skipped\n`,
      );
    for (const name of block.skipped)
      io.stderr(`csr-signer istio mesh-config: Signer ${name} has published no roots yet; skipped\n`);
    io.stdout(block.yaml);
  } finally {
    await kubeConfig.close();
  }
}
