import { expect } from "chai";
import { readCertificateAuthorityFiles, type SecretObject } from "../../../src/controller/ca-source.js";
import { readSecretValue } from "../../../src/controller/secret-values.js";
import {
  cachedTenantSecret,
  caFileDataKeys,
  type TenantSecretObject,
} from "../../../src/controller/tenant-secret-cache.js";
import { maximumTenantSecretStringBytes } from "../../../src/controller/tenant-secret-watches.js";
import { LongStringCutter } from "../../../src/kube/long-strings.js";
import { CertificateAuthorityError } from "../../../src/pki/certificate-authority.js";
import { thrownBy } from "../../support/errors.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

const base64 = (text: string | Uint8Array): string => Buffer.from(text).toString("base64");

/** A tenant's Secret as the API server sends it: the CA files, a passphrase, and everything else it wrote. */
async function tenantSecret(): Promise<{ secret: TenantSecretObject; caData: Record<string, string> }> {
  const ca = await makeTestCertificateAuthority();
  const caData = Object.fromEntries(Object.entries(ca.files).map(([name, value]) => [name, base64(value)]));
  const json = JSON.stringify({
    kind: "Secret",
    apiVersion: "v1",
    type: "Opaque",
    metadata: {
      name: "foo-cacerts",
      namespace: "tenant-foo",
      uid: "5c2d7f0e-0000-4000-8000-000000000001",
      resourceVersion: "4711",
      creationTimestamp: "2026-01-01T00:00:00Z",
      labels: { app: "x".repeat(63) },
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "y".repeat(50_000) },
      ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "o", uid: "u" }],
      managedFields: [
        { manager: "kubectl", operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:data": {} } },
      ],
    },
    data: {
      ...caData,
      "tls.crt": base64("tls certificate"),
      passphrase: base64("correct horse"),
      "padding.bin": base64(Buffer.alloc(60_000, 7)),
      "ca-cert.pem.bak": base64("old"),
    },
  });
  return { secret: JSON.parse(json) as TenantSecretObject, caData };
}

describe("What the cache of a tenant's CA Secret keeps (cachedTenantSecret)", () => {
  it("keeps name, namespace, resourceVersion and the CA files byte for byte; drops managedFields, labels, annotations, uid and unknown keys", async () => {
    const { secret, caData } = await tenantSecret();
    const cached = cachedTenantSecret(secret, caFileDataKeys);
    expect(cached).to.deep.equal({
      metadata: { name: "foo-cacerts", namespace: "tenant-foo", resourceVersion: "4711" },
      data: { ...caData, "tls.crt": base64("tls certificate") },
    });
    for (const [name, value] of Object.entries(cached.data!)) {
      expect(value).to.equal(secret.data![name]);
      expect(Buffer.from(value, "base64").equals(Buffer.from(secret.data![name]!, "base64"))).to.equal(true);
    }
    // What is kept is a few KiB; the tenant wrote far more.
    expect(JSON.stringify(cached).length).to.be.below(JSON.stringify(secret).length / 10);
  });

  it("keeps a passphrase's key only when a Signer reads it", async () => {
    const { secret } = await tenantSecret();
    expect(cachedTenantSecret(secret, caFileDataKeys).data).not.to.have.property("passphrase");
    const withPassphrase = cachedTenantSecret(secret, new Set([...caFileDataKeys, "passphrase"]));
    expect(withPassphrase.data!.passphrase).to.equal(base64("correct horse"));
    expect(withPassphrase.data).not.to.have.property("padding.bin");
  });

  it("keeps every CA file name a CA source reads, in both layouts, and no other", () => {
    expect([...caFileDataKeys].sort()).to.deep.equal(
      ["ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem", "tls.crt", "tls.key", "ca.crt"].sort(),
    );
  });

  it("what the readers ask for is what the cache keeps: CA files and a passphrase read from the cached copy as from the whole Secret", async () => {
    const { secret } = await tenantSecret();
    const asked: string[][] = [];
    const whole = (): SecretObject => secret;
    const cached = (_namespace: string, _name: string, dataKeys: readonly string[]): SecretObject => {
      asked.push([...dataKeys]);
      return cachedTenantSecret(secret, new Set(dataKeys));
    };
    const source = { secretName: "foo-cacerts", secretNamespace: "tenant-foo" };
    expect(readCertificateAuthorityFiles(source, "csr-signer", cached)).to.deep.equal(
      readCertificateAuthorityFiles(source, "csr-signer", whole),
    );
    const passphrase = { secret: { name: "foo-cacerts", key: "passphrase" } };
    expect(readSecretValue(passphrase, "tenant-foo", cached)).to.equal("correct horse");
    expect(asked).to.deep.equal([[...caFileDataKeys], ["passphrase"]]);
  });

  it("a value cut before parsing keeps its placeholder, so it is still refused as too large", () => {
    const cutter = new LongStringCutter(maximumTenantSecretStringBytes);
    const huge = base64(Buffer.alloc(512 * 1024, 1));
    cutter.push(Buffer.from(JSON.stringify({ metadata: { name: "ca" }, data: { "ca-cert.pem": huge } })));
    const parsed = JSON.parse(Buffer.concat(cutter.take()).toString("utf8")) as TenantSecretObject;
    const cached = cachedTenantSecret(parsed, caFileDataKeys);
    expect(cached.data!["ca-cert.pem"]).to.equal(parsed.data!["ca-cert.pem"]);
    const error = thrownBy(CertificateAuthorityError, () =>
      readCertificateAuthorityFiles({ secretName: "ca", secretNamespace: "t" }, "csr-signer", () => cached),
    );
    expect(error.reason).to.equal("TooLarge");
  });

  it("copies only the Secret's own keys: a key named like an Object.prototype member is absent unless the tenant wrote it", () => {
    // Raw JSON: an object literal's __proto__ would set the prototype, JSON.parse makes an own key.
    const parsed = JSON.parse(
      `{"metadata":{"name":"s"},"data":{"__proto__":"${base64("own")}","ca.crt":"${base64("c")}"}}`,
    ) as TenantSecretObject;
    const cached = cachedTenantSecret(parsed, new Set(["constructor", "toString", "__proto__", "ca.crt"]));
    expect(Object.keys(cached.data!).sort()).to.deep.equal(["__proto__", "ca.crt"]);
    expect(Object.getPrototypeOf(cached.data)).to.equal(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(cached.data, "__proto__")?.value).to.equal(base64("own"));
  });

  it("keeps a Secret with no data and no metadata as empty, without inventing fields", () => {
    expect(cachedTenantSecret({}, caFileDataKeys)).to.deep.equal({ metadata: {}, data: {} });
  });
});
