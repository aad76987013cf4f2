/**
 * The control plane's certificates and kubeconfigs, made with the openssl CLI: a serving CA and
 * kube-apiserver's serving certificate, a client CA (--client-ca-file) and the admin's client
 * certificate in system:masters, more client identities on demand, and the service account key.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { kubeConfigForClientCertificate } from "../kube-client.js";
import { openssl } from "../openssl.js";

/** The control plane's certificates and keys, in `dir`. */
export interface Pki {
  servingCaPem: string;
  servingCertificatePath: string;
  servingKeyPath: string;
  clientCaCertificatePath: string;
  clientCaKeyPath: string;
  adminCertificatePem: string;
  adminKeyPem: string;
  serviceAccountKeyPath: string;
  dir: string;
}

export function createPki(dir: string): Pki {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = (name: string): string => path.join(dir, name);
  createSelfSignedEcCa(file("serving-ca"), "/CN=csr-signer-test serving CA", 7);
  createSelfSignedEcCa(file("client-ca"), "/CN=csr-signer-test client CA", 7);
  // SEC1 ("EC PRIVATE KEY"): --service-account-key-file does not read PKCS#8 ("PRIVATE KEY").
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", file("service-account.key")]);
  issueLeaf({
    path: file("serving"),
    subject: "/CN=kube-apiserver",
    caPath: file("serving-ca"),
    extensions: [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ],
  });
  issueLeaf({
    path: file("admin"),
    subject: "/O=system:masters/CN=admin",
    caPath: file("client-ca"),
    extensions: clientExtensions,
  });
  const read = (name: string): string => fs.readFileSync(file(name), "utf8");
  return {
    servingCaPem: read("serving-ca.crt"),
    servingCertificatePath: file("serving.crt"),
    servingKeyPath: file("serving.key"),
    clientCaCertificatePath: file("client-ca.crt"),
    clientCaKeyPath: file("client-ca.key"),
    adminCertificatePem: read("admin.crt"),
    adminKeyPem: read("admin.key"),
    serviceAccountKeyPath: file("service-account.key"),
    dir,
  };
}

const clientExtensions = [
  "basicConstraints=critical,CA:FALSE",
  "keyUsage=critical,digitalSignature",
  "extendedKeyUsage=clientAuth",
];

function issueClientCertificate(
  pki: Pki,
  user: string,
  groups: string[],
): { certificatePem: string; keyPem: string } {
  const escape = (value: string): string => value.replace(/[/\\=+,]/g, (character) => `\\${character}`);
  const subject = [...groups.map((group) => `/O=${escape(group)}`), `/CN=${escape(user)}`].join("");
  const base = path.join(pki.dir, `client-${randomBytes(6).toString("hex")}`);
  issueLeaf({
    path: base,
    subject,
    caPath: path.join(pki.dir, "client-ca"),
    extensions: clientExtensions,
  });
  return {
    certificatePem: fs.readFileSync(`${base}.crt`, "utf8"),
    keyPem: fs.readFileSync(`${base}.key`, "utf8"),
  };
}

/** Self-signed EC P-256 CA at `<base>.crt` / `<base>.key`, valid for `days`. */
export function createSelfSignedEcCa(base: string, subject: string, days: number): void {
  openssl([
    "req",
    "-x509",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${base}.key`,
    "-out",
    `${base}.crt`,
    "-subj",
    subject,
    "-days",
    String(days),
    "-sha256",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

/** EC P-256 key and certificate at `<path>.key` / `<path>.crt`, signed by the CA at `<caPath>.crt/.key`. */
function issueLeaf(leaf: { path: string; subject: string; caPath: string; extensions: string[] }): void {
  openssl([
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    `${leaf.path}.key`,
    "-out",
    `${leaf.path}.csr`,
    "-subj",
    leaf.subject,
  ]);
  fs.writeFileSync(`${leaf.path}.ext`, leaf.extensions.join("\n") + "\n");
  openssl([
    "x509",
    "-req",
    "-in",
    `${leaf.path}.csr`,
    "-CA",
    `${leaf.caPath}.crt`,
    "-CAkey",
    `${leaf.caPath}.key`,
    "-set_serial",
    randomSerial(),
    "-days",
    "7",
    "-sha256",
    "-extfile",
    `${leaf.path}.ext`,
    "-out",
    `${leaf.path}.crt`,
  ]);
}

/** 128 random bits as a positive serial number. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString("hex")}`;
}

/** A KubeConfig for the admin (system:masters) of the API server at `server`. */
export function adminKubeConfig(server: string, pki: Pki): KubeConfig {
  return kubeConfigForClientCertificate({
    name: "csr-signer-test-admin",
    server,
    certificateAuthorityPem: pki.servingCaPem,
    clientCertificatePem: pki.adminCertificatePem,
    clientKeyPem: pki.adminKeyPem,
  });
}

/** A KubeConfig authenticated by a new client certificate (CN=user, O=each group) signed by the client CA. */
export function clientCertificateKubeConfig(
  server: string,
  pki: Pki,
  user: string,
  groups: string[],
): KubeConfig {
  const issued = issueClientCertificate(pki, user, groups);
  return kubeConfigForClientCertificate({
    name: `client-certificate-${randomBytes(4).toString("hex")}`,
    server,
    certificateAuthorityPem: pki.servingCaPem,
    clientCertificatePem: issued.certificatePem,
    clientKeyPem: issued.keyPem,
  });
}
