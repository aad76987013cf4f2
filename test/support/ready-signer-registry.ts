import { SignerRegistry } from "../../src/controller/signer-registry.js";
import { makeTestCertificateAuthority } from "./pki.js";

/**
 * A registry with one ready Signer `name` of a test CA (a fresh one unless `caFiles`): signer name
 * example.com/<name> and a small policy unless `spec` says otherwise, with `namespaces` in the cluster.
 */
export async function signerRegistryFor(
  name: string,
  options: {
    spec?: Record<string, unknown>;
    caFiles?: Record<string, string>;
    namespaces?: string[];
  } = {},
): Promise<SignerRegistry> {
  const caFiles = options.caFiles ?? (await makeTestCertificateAuthority({ name })).files;
  const spec = {
    signerName: `example.com/${name}`,
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
    ...options.spec,
    certificateAuthority: { secretName: `${name}-cacerts` },
  };
  const registry = new SignerRegistry(
    {
      signers: () => [{ metadata: { name, generation: 1 }, spec }],
      secret: () => ({
        metadata: { name: `${name}-cacerts`, namespace: "csr-signer" },
        data: Object.fromEntries(
          Object.entries(caFiles).map(([key, value]) => [key, Buffer.from(value).toString("base64")]),
        ),
      }),
      namespaces: () => (options.namespaces ?? []).map((namespace) => ({ metadata: { name: namespace } })),
    },
    "csr-signer",
  );
  registry.rebuild();
  registry.markPublished(name); // standalone: record the bundle as published so the CA is adopted
  registry.rebuild();
  return registry;
}
