/**
 * The two layouts CA material comes in (Istio's cacerts and a kubernetes.io/tls Secret): their file
 * names, which file holds the key, and the files as read from a Secret or a folder.
 */
export type CertificateAuthorityLayout = "cacerts" | "kubernetes.io/tls";

/** File names of the two layouts we read. */
export const CacertsFiles = {
  certificate: "ca-cert.pem",
  key: "ca-key.pem",
  roots: "root-cert.pem",
  chain: "cert-chain.pem",
} as const;
export const TlsSecretFiles = { certificate: "tls.crt", key: "tls.key", roots: "ca.crt" } as const;

export type CertificateAuthorityFiles = Readonly<Record<string, Uint8Array | string | undefined>>;

export function fileText(file: Uint8Array | string): string {
  return typeof file === "string" ? file : Buffer.from(file).toString("utf8");
}

/**
 * The key file of `files` as their layout names it (ca-key.pem for cacerts, else tls.key; `file`
 * undefined when absent): for loadCertificateAuthority and encrypted-key-file.ts alike.
 */
export function caKeyFileOf(files: CertificateAuthorityFiles): {
  name: string;
  file: Uint8Array | string | undefined;
} {
  const name = isCacertsLayout(files) ? CacertsFiles.key : TlsSecretFiles.key;
  return { name, file: files[name] };
}

export function isCacertsLayout(files: CertificateAuthorityFiles): boolean {
  return files[CacertsFiles.certificate] !== undefined || files[CacertsFiles.key] !== undefined;
}
