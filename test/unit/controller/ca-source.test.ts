import { expect } from "chai";
import {
  readCertificateAuthorityFiles,
  secretNamespaceOf,
  type SecretObject,
} from "../../../src/controller/ca-source.js";
import { readSecretValue, SecretValueError } from "../../../src/controller/secret-values.js";
import { maximumTenantSecretStringBytes } from "../../../src/controller/tenant-secret-watches.js";
import { LongStringCutter } from "../../../src/kube/long-strings.js";
import { CertificateAuthorityError } from "../../../src/pki/certificate-authority.js";
import { thrownBy } from "../../support/errors.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

/** A Secret as a tenant Secret's watch caches it: string values over the cap cut before parsing. */
function asCached(data: Record<string, string>): SecretObject {
  const cutter = new LongStringCutter(maximumTenantSecretStringBytes);
  cutter.push(Buffer.from(JSON.stringify({ metadata: { name: "ca", namespace: "tenant" }, data })));
  return JSON.parse(Buffer.concat(cutter.take()).toString("utf8")) as SecretObject;
}

describe("CA Secrets in a tenant namespace: where they are read, and what the cache keeps", () => {
  it("reads secretName (and PIN and passphrase keys) in secretNamespace when set, else the controller's namespace", async () => {
    const ca = await makeTestCertificateAuthority();
    const data = Object.fromEntries(
      Object.entries(ca.files).map(([name, value]) => [name, Buffer.from(value).toString("base64")]),
    );
    const asked: string[] = [];
    const lookup = (namespace: string, name: string): SecretObject => {
      asked.push(`${namespace}/${name}`);
      return asCached({ ...data, pin: Buffer.from("1234").toString("base64") });
    };
    const source = { secretName: "foo-cacerts", secretNamespace: "tenant-foo" };
    const files = readCertificateAuthorityFiles(source, "csr-signer", lookup);
    expect(files.sourceName).to.equal("Secret tenant-foo/foo-cacerts");
    expect(Object.keys(files.files)).to.include("ca-cert.pem");
    expect(
      readSecretValue({ secret: { name: "pin", key: "pin" } }, secretNamespaceOf(source, "x"), lookup),
    ).to.equal("1234");
    readCertificateAuthorityFiles({ secretName: "foo-cacerts" }, "csr-signer", lookup);
    expect(asked).to.deep.equal(["tenant-foo/foo-cacerts", "tenant-foo/pin", "csr-signer/foo-cacerts"]);
  });

  it("a value the watch cut (a tenant's 1 MiB write) is too large, never decoded: TooLarge for a CA file, a SecretValueError for a PIN", () => {
    const huge = Buffer.alloc(512 * 1024, 1).toString("base64");
    const cached = asCached({ "ca-cert.pem": huge, pin: huge });
    expect(cached.data!["ca-cert.pem"]!.length).to.be.below(100);
    const error = thrownBy(CertificateAuthorityError, () =>
      readCertificateAuthorityFiles(
        { secretName: "ca", secretNamespace: "tenant" },
        "csr-signer",
        () => cached,
      ),
    );
    expect(error.reason).to.equal("TooLarge");
    expect(error.message).to.contain("Secret tenant/ca");
    expect(
      thrownBy(SecretValueError, () =>
        readSecretValue({ secret: { name: "ca", key: "pin" } }, "tenant", () => cached),
      ).message,
    ).to.equal("Secret tenant/ca key pin is larger than 4096 bytes");
  });

  it("keeps every value a CA file may hold (64 KiB, base64) below the cut", () => {
    expect(Math.ceil((64 * 1024) / 3) * 4).to.be.below(maximumTenantSecretStringBytes);
  });
});
