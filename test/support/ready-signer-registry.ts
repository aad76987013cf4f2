import { SignerRegistry } from "../../src/controller/signer-registry.js";
import { makeTestCertificateAuthority } from "./pki.js";

/** A registry with one ready Signer `name` (signer name example.com/<name>) of a fresh test CA. */
export async function signerRegistryFor(name: string): Promise<SignerRegistry> {
  const ca = await makeTestCertificateAuthority({ name });
  const spec = {
    signerName: `example.com/${name}`,
    certificateAuthority: { secretName: `${name}-cacerts` },
    policy: { requesters: { users: ["admin"] }, dnsNames: ["*.example.test"] },
  };
  const registry = new SignerRegistry(
    {
      signers: () => [{ metadata: { name, generation: 1 }, spec }],
      secret: () => ({
        metadata: { name: `${name}-cacerts`, namespace: "csr-signer" },
        data: Object.fromEntries(
          Object.entries(ca.files).map(([key, value]) => [key, Buffer.from(value).toString("base64")]),
        ),
      }),
      namespaces: () => [],
    },
    "csr-signer",
  );
  registry.rebuild();
  registry.markPublished(name); // standalone: record the bundle as published so the CA is adopted
  registry.rebuild();
  return registry;
}
