/**
 * Keys and key fields of PodCertificateRequests as a kubelet makes them: the stub PKCS#10 request
 * (kubelet 1.36+) or the deprecated pkixPublicKey with a proof of possession over the pod UID.
 */
import { constants, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { PodKeyType } from "../../src/pki/pod-certificate-key.js";
import { decodeSinglePem } from "../../src/pki/pem.js";
import { openssl } from "./openssl.js";
import { buildTestCertificateRequest, withTempDir } from "./pki.js";

/** The API's key types, and RSA2048 (which the API server refuses: for the policy's own checks). */
export type PodTestKeyType = PodKeyType | "RSA2048";

const keys = new Map<PodTestKeyType, KeyObject>();

/** A private key of the type, one per process and type (RSA generation is slow). */
export function podTestKey(type: PodTestKeyType): KeyObject {
  let key = keys.get(type);
  if (!key) {
    if (type.startsWith("RSA"))
      key = generateKeyPairSync("rsa", { modulusLength: Number(type.slice(3)) }).privateKey;
    else if (type === "ED25519") key = generateKeyPairSync("ed25519").privateKey;
    else key = generateKeyPairSync("ec", { namedCurve: `P-${type.slice(6)}` }).privateKey;
    keys.set(type, key);
  }
  return key;
}

export interface PodKeyFields {
  pkixPublicKey?: string;
  proofOfPossession?: string;
  stubPKCS10Request?: string;
}

/** The proof of possession as kubelet signs it (Go's SignPSS with nil options: the longest salt). */
export function proofOfPossession(key: KeyObject, podUID: string): Buffer {
  const data = Buffer.from(podUID, "ascii");
  if (key.asymmetricKeyType === "ed25519") return sign(null, data, key);
  if (key.asymmetricKeyType === "ec") return sign("sha256", data, { key, dsaEncoding: "der" });
  return sign("sha256", data, {
    key,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
  });
}

/** An empty PKCS#10 request signed by `key`, DER (Ed25519 through the openssl CLI). */
export function stubRequest(
  key: KeyObject,
  options: { breakSignature?: boolean; publicKey?: KeyObject } = {},
): Buffer {
  if (key.asymmetricKeyType !== "ed25519")
    return Buffer.from(
      decodeSinglePem(buildTestCertificateRequest({ key, ...options }), "CERTIFICATE REQUEST"),
    );
  return withTempDir((dir) => {
    writeFileSync(join(dir, "key.pem"), key.export({ format: "pem", type: "pkcs8" }));
    const pem = openssl(["req", "-new", "-key", join(dir, "key.pem"), "-subj", "/CN=pod"]);
    return Buffer.from(decodeSinglePem(pem, "CERTIFICATE REQUEST"));
  });
}

/** spec's key fields (base64, as JSON carries bytes) in either form. */
export function podKeyFields(
  key: KeyObject,
  podUID: string,
  form: "stub" | "proof",
  options: { proofFor?: string } = {},
): PodKeyFields {
  if (form === "stub") return { stubPKCS10Request: stubRequest(key).toString("base64") };
  return {
    pkixPublicKey: createPublicKey(key).export({ format: "der", type: "spki" }).toString("base64"),
    proofOfPossession: proofOfPossession(key, options.proofFor ?? podUID).toString("base64"),
  };
}

/** A Pod on a Node with its ServiceAccount, as a PodCertificateRequest names them. */
export interface PodFixture {
  namespace: string;
  name: string;
  uid: string;
  serviceAccountName: string;
  serviceAccountUID: string;
}

/** Creates `namespace`, its ServiceAccount "web" and the Pod `name` running as it on `nodeName`. */
export async function createPodOnNode(
  admin: KubeConfig,
  namespace: string,
  name: string,
  nodeName: string,
): Promise<PodFixture> {
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const serviceAccount = await core.createNamespacedServiceAccount({
    namespace,
    body: { metadata: { name: "web" } },
  });
  const pod = await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name },
      spec: { nodeName, serviceAccountName: "web", containers: [{ name: "app", image: "app:1" }] },
    },
  });
  return {
    namespace,
    name,
    uid: pod.metadata!.uid!,
    serviceAccountName: "web",
    serviceAccountUID: serviceAccount.metadata!.uid!,
  };
}
