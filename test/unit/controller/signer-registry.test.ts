import { expect } from "chai";
import { SecretUnavailableError, type SecretObject } from "../../../src/controller/ca-source.js";
import { SignerRegistry } from "../../../src/controller/signer-registry.js";
import type { SignerObject } from "../../../src/api/signer.js";
import {
  cacertsFiles,
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
} from "../../../src/pki/offline-ca.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";
import { maximumCertificateAuthorityFileBytes } from "../../../src/pki/ca-material-files.js";
import { signerNotReadyMessage } from "../../../src/controller/signing-failure.js";

function secretOf(files: Record<string, string>): SecretObject {
  return {
    metadata: { name: "cacerts", namespace: "csr-signer" },
    data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}

describe("SignerRegistry (CA selection and rotation pacing, no API server)", function () {
  this.timeout(20_000);
  let clock = Date.now();
  let secret: SecretObject | undefined;
  const signer: SignerObject = {
    metadata: { name: "foo", generation: 1 },
    spec: {
      signerName: "example.com/foo",
      certificateAuthority: { secretName: "cacerts" },
      issuance: { defaultDuration: "1h", maxDuration: "1h" },
      trustBundle: { minimumRootPublication: "10m", expiryWarning: "720h" },
      policy: { requesters: { users: ["a"] } },
    },
  };
  const registry = () =>
    new SignerRegistry(
      { signers: () => [signer], secret: () => secret, namespaces: () => [] },
      "csr-signer",
      () => new Date(clock),
    );

  it("a first CA signs once published; a Secret that goes away keeps the CA in use (Degraded)", async () => {
    const ca = await makeTestCertificateAuthority({ intermediateLifetimeSeconds: 86400 * 10 });
    secret = secretOf(ca.files);
    const r = registry();
    r.rebuild();
    expect(r.forSignerName("example.com/foo")!.problem?.reason).to.equal("RootNotYetPublished");
    r.markPublished("foo");
    expect(r.rebuild()).to.deep.equal(["example.com/foo"]);
    const ready = r.forSignerName("example.com/foo")!;
    expect(ready.problem).to.equal(undefined);
    // Expires in 10 days, within the 30-day warning window.
    expect(ready.expiring).to.match(/CN=test intermediate" expires/);
    expect(
      r.desiredStatus("foo")!.conditions!.find((c) => c.type === "CertificateAuthorityExpiring"),
    ).to.include({ status: "True", reason: "ExpiresSoon" });
    secret = undefined;
    r.rebuild();
    expect(r.forSignerName("example.com/foo")!.authority).to.equal(ready.authority);
    expect(r.forSignerName("example.com/foo")!.degraded?.reason).to.equal("CertificateAuthorityMissing");
  });

  it("a root waiting on a failing publication: the request's SignerNotReady Event names the Ready condition's reason", async () => {
    const ca = await makeTestCertificateAuthority({ intermediateLifetimeSeconds: 86400 * 10 });
    secret = secretOf(ca.files);
    const r = registry();
    r.rebuild();
    expect(r.forSignerName("example.com/foo")!.problem?.reason).to.equal("RootNotYetPublished");
    r.troubles.reportPublication("foo", [
      'ClusterTrustBundle: forbidden: not permitted to attest for signerName "example.com/foo"',
    ]);
    const waiting = r.forSignerName("example.com/foo")!;
    const ready = r.conditions("foo")!.find((c) => c.type === "Ready")!;
    expect(ready.reason).to.equal("TrustBundlePublicationFailed");
    expect(waiting.problem).to.deep.equal({ reason: ready.reason, message: ready.message });
    expect(signerNotReadyMessage(waiting, waiting.problem!)).to.equal(
      "Signer foo cannot sign: TrustBundlePublicationFailed (its Ready condition says why)",
    );
    // Publication recovers: the headline is the wait again.
    r.troubles.reportPublication("foo", []);
    expect(r.forSignerName("example.com/foo")!.problem?.reason).to.equal("RootNotYetPublished");
  });

  it("signing trouble (a refused certificate write) shows on Ready until a certificate is written", async () => {
    const ca = await makeTestCertificateAuthority();
    secret = secretOf(ca.files);
    const r = registry();
    r.rebuild();
    r.markPublished("foo");
    r.rebuild();
    const ready = () => r.desiredStatus("foo")!.conditions!.find((c) => c.type === "Ready");
    expect(ready()).to.include({ status: "True", reason: "Ready" });
    r.troubles.reportSigningTrouble("foo", {
      reason: "CertificateWriteFailed",
      message: "HTTP 403 Forbidden",
    });
    expect(ready()).to.include({
      status: "False",
      reason: "CertificateWriteFailed",
      message: "HTTP 403 Forbidden",
    });
    // Trouble does not stop the signer from trying: the CA stays selected.
    expect(r.forSignerName("example.com/foo")!.problem).to.equal(undefined);
    r.troubles.signingSucceeded("foo");
    expect(ready()).to.include({ status: "True", reason: "Ready" });
  });

  it("a CA that expires in place stops signing: NotReady CertificateAuthorityExpired, not re-adopted from the parse cache", async () => {
    const started = clock;
    try {
      const ca = await makeTestCertificateAuthority({ intermediateLifetimeSeconds: 86400 * 10 });
      secret = secretOf(ca.files);
      const r = registry();
      r.rebuild();
      r.markPublished("foo");
      r.rebuild();
      expect(r.forSignerName("example.com/foo")!.authority).to.not.equal(undefined);
      clock += 86400 * 11 * 1000; // the same Secret, eleven days later
      r.rebuild();
      const expired = r.forSignerName("example.com/foo")!;
      expect(expired.authority).to.equal(undefined);
      expect(expired.problem?.reason).to.equal("CertificateAuthorityExpired");
      expect(expired.problem?.message).to.match(/Secret csr-signer\/cacerts: .*expired at/);
      expect(r.desiredStatus("foo")!.conditions!.find((c) => c.type === "Ready")).to.include({
        status: "False",
        reason: "CertificateAuthorityExpired",
      });
    } finally {
      clock = started;
    }
  });

  it("a spec the controller cannot use (one stored before the schema refused it) is NotReady InvalidSpec naming the field", () => {
    const stored: SignerObject = {
      metadata: { name: "old", generation: 3 },
      spec: {
        ...(signer.spec as object),
        signerName: "example.com/old",
        policy: { requesters: { users: [] } },
      },
    };
    const r = new SignerRegistry(
      { signers: () => [stored], secret: () => secret, namespaces: () => [] },
      "csr-signer",
      () => new Date(clock),
    );
    r.rebuild();
    expect(r.forSignerName("example.com/old")).to.equal(undefined);
    const ready = r.desiredStatus("old")!.conditions!.find((c) => c.type === "Ready")!;
    expect(ready).to.include({ status: "False", reason: "InvalidSpec", observedGeneration: 3 });
    expect(ready.message).to.contain("spec.policy.requesters");
  });

  it("publishes extra roots from the spec next to the CA's; a non-root there is Degraded InvalidExtraRoots", async () => {
    const ca = await makeTestCertificateAuthority();
    const extra = await makeTestCertificateAuthority({ name: "extra" });
    secret = secretOf(ca.files);
    const withExtra = (pem: string): SignerObject => ({
      metadata: { name: "foo", generation: 2 },
      spec: { ...(signer.spec as object), trustBundle: { extraRootsPem: pem } },
    });
    let current = withExtra(extra.files["root-cert.pem"]!);
    const r = new SignerRegistry(
      { signers: () => [current], secret: () => secret, namespaces: () => [] },
      "csr-signer",
      () => new Date(clock),
    );
    r.rebuild();
    expect(
      r
        .all()[0]!
        .bundle!.certificates.map((c) => c.subject)
        .sort(),
    ).to.deep.equal(["O=csr-signer tests, CN=extra root", "O=csr-signer tests, CN=test root"]);
    current = withExtra(extra.files["ca-cert.pem"]!); // an intermediate, by mistake
    r.rebuild();
    expect(r.all()[0]!.degraded).to.include({ reason: "InvalidExtraRoots" });
    expect(r.all()[0]!.degraded!.message)
      .to.contain("spec.trustBundle.extraRootsPem")
      .and.to.contain("extra intermediate");
    // The extra root that went away is retired, and stays for the overlap window like any root.
    const extraRoot = r.all()[0]!.bundle!.recorded.find((root) => root.subject.includes("extra root"));
    expect(extraRoot?.retiredAt).to.be.a("string");
  });

  it("a new root signs only after minimumRootPublication; its root is in the bundle at once", async () => {
    const rootA = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: "A" }],
      lifetimeSeconds: 86400 * 365,
      keyType: "ecdsa-p256",
    });
    const rootB = await createRootCertificateAuthority({
      subject: [{ type: "CN", value: "B" }],
      lifetimeSeconds: 86400 * 365,
      keyType: "ecdsa-p256",
    });
    const a1 = await createIntermediateCertificateAuthority(rootA, {
      subject: [{ type: "CN", value: "A1" }],
      lifetimeSeconds: 86400 * 100,
      keyType: "ecdsa-p256",
    });
    const b1 = await createIntermediateCertificateAuthority(rootB, {
      subject: [{ type: "CN", value: "B1" }],
      lifetimeSeconds: 86400 * 100,
      keyType: "ecdsa-p256",
    });
    secret = secretOf(cacertsFiles(a1, [rootA.certificate], [rootA.certificate]));
    const r = registry();
    r.rebuild();
    r.markPublished("foo");
    r.rebuild();
    secret = secretOf(cacertsFiles(b1, [rootB.certificate], [rootB.certificate]));
    r.rebuild();
    let current = r.forSignerName("example.com/foo")!;
    expect(current.authority!.signingCertificate.subject).to.equal("CN=A1");
    expect(current.degraded?.reason).to.equal("RootNotYetPublished");
    expect(current.bundle!.certificates.map((c) => c.subject).sort()).to.deep.equal(["CN=A", "CN=B"]);
    r.markPublished("foo");
    clock += 9 * 60_000;
    r.rebuild();
    expect(r.forSignerName("example.com/foo")!.authority!.signingCertificate.subject).to.equal("CN=A1");
    clock += 2 * 60_000;
    r.rebuild();
    current = r.forSignerName("example.com/foo")!;
    expect(current.authority!.signingCertificate.subject).to.equal("CN=B1");
    expect(current.degraded).to.equal(undefined);
  });
  it("counts made while a status write is in flight reach the next write; a cache behind our write loses none", async () => {
    secret = secretOf((await makeTestCertificateAuthority()).files);
    const r = registry();
    r.rebuild();
    r.countIssued("foo");
    r.countFailed("foo");
    const writing = r.desiredStatus("foo")!;
    expect([writing.issuedCount, writing.failedCount]).to.deep.equal([1, 1]);
    r.countIssued("foo"); // signed while the write was on its way
    r.statusWritten("foo", writing);
    // The cached object still has no status (the watch echo has not arrived).
    expect([r.desiredStatus("foo")!.issuedCount, r.desiredStatus("foo")!.failedCount]).to.deep.equal([2, 1]);
  });

  it("refresh rebuilds one Signer; a held rotation says when to look again (first publication + minimumRootPublication)", async () => {
    const first = await makeTestCertificateAuthority();
    const second = await makeTestCertificateAuthority();
    secret = secretOf(first.files);
    const r = registry();
    expect(r.refresh("foo")).to.deep.equal({ nowSigning: [], claimsChanged: [] });
    expect(r.usingSecret("cacerts")).to.deep.equal(["foo"]);
    expect([r.usingSecret("other"), r.usingFolders(), r.concerning("some-namespace")]).to.deep.equal([
      [],
      [],
      [],
    ]);
    r.markPublished("foo");
    expect(r.refresh("foo").nowSigning).to.deep.equal(["example.com/foo"]);
    secret = secretOf(second.files);
    r.refresh("foo");
    r.markPublished("foo");
    const publishedAt = Math.floor(clock / 1000) * 1000; // recorded in whole seconds
    r.refresh("foo");
    const held = r.forObjectName("foo")!;
    expect(held.degraded?.reason).to.equal("RootNotYetPublished");
    expect(held.recheckAt?.getTime()).to.equal(publishedAt + 600_000);
  });
});

describe("SignerRegistry: one Signer's failure is its own (isolation, size caps, parse memory)", function () {
  this.timeout(20_000);
  const specOf = (name: string, secretName: string) => ({
    signerName: `example.com/${name}`,
    certificateAuthority: { secretName },
    policy: { requesters: { users: ["a"] } },
  });
  const signers: SignerObject[] = [
    { metadata: { name: "good" }, spec: specOf("good", "good") },
    { metadata: { name: "bad" }, spec: specOf("bad", "bad") },
  ];

  function undecodablePublicKey(files: Record<string, string>): Record<string, string> {
    const der = Buffer.from(files["ca-cert.pem"]!.replace(/-----[^-]+-----|\s/g, ""), "base64");
    Buffer.from("06082a8648ce3d030163", "hex").copy(
      der,
      der.indexOf(Buffer.from("06082a8648ce3d030107", "hex")),
    );
    return {
      ...files,
      "ca-cert.pem": `-----BEGIN CERTIFICATE-----\n${der.toString("base64")}\n-----END CERTIFICATE-----\n`,
    };
  }

  it("a CA certificate whose public key OpenSSL cannot decode: that Signer is NotReady, the other is built", async () => {
    const ca = await makeTestCertificateAuthority();
    const secrets: Record<string, SecretObject> = {
      good: secretOf(ca.files),
      bad: secretOf(undecodablePublicKey(ca.files)),
    };
    const r = new SignerRegistry(
      { signers: () => signers, secret: (_ns, name) => secrets[name], namespaces: () => [] },
      "csr-signer",
    );
    expect(() => r.rebuild()).not.to.throw();
    r.markPublished("good");
    r.rebuild();
    expect(r.forSignerName("example.com/good")!.authority).not.to.equal(undefined);
    const bad = r.forSignerName("example.com/bad")!;
    expect(bad.problem?.reason).to.equal("CertificateAuthorityMalformedCertificate");
    expect(bad.problem?.message).to.match(/^Secret csr-signer\/bad: ca-cert\.pem: /);
  });

  it("a Signer changed to claim another tenant's signerName is NotReady DuplicateSignerName; the older owner keeps signing", async () => {
    const ca = await makeTestCertificateAuthority();
    const owner: SignerObject = {
      metadata: { name: "tenant-a", creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: specOf("shared", "ca"),
    };
    // Created later (and named to sort first), then edited to take tenant-a's name.
    const thief: SignerObject = {
      metadata: { name: "aaa-tenant-b", creationTimestamp: new Date("2026-02-01T00:00:00Z") },
      spec: specOf("shared", "ca"),
    };
    const r = new SignerRegistry(
      { signers: () => [thief, owner], secret: () => secretOf(ca.files), namespaces: () => [] },
      "csr-signer",
    );
    r.rebuild();
    r.markPublished("tenant-a");
    r.rebuild();
    const signing = r.forSignerName("example.com/shared")!;
    expect(signing.objectName).to.equal("tenant-a");
    expect(signing.problem).to.equal(undefined);
    expect(signing.authority).not.to.equal(undefined);
    expect(r.desiredStatus("aaa-tenant-b")!.conditions!.find((c) => c.type === "Ready")).to.include({
      status: "False",
      reason: "DuplicateSignerName",
      message: "spec.signerName example.com/shared belongs to Signer tenant-a, which claimed it first",
    });
    // Same creation time: the object name decides, so every replica picks the same owner.
    const twin: SignerObject = {
      ...thief,
      metadata: { name: "aaa-twin", creationTimestamp: "2026-01-01T00:00:00Z" },
    };
    const tie = new SignerRegistry(
      { signers: () => [owner, twin], secret: () => secretOf(ca.files), namespaces: () => [] },
      "csr-signer",
    );
    tie.rebuild();
    expect(tie.forSignerName("example.com/shared")!.objectName).to.equal("aaa-twin");
  });

  it("a recorded root in status that is not PEM: that Signer is NotReady InvalidTrustBundleStatus, the other is built", async () => {
    const ca = await makeTestCertificateAuthority();
    const now = new Date().toISOString();
    const withBadStatus: SignerObject[] = [
      signers[0]!,
      {
        metadata: { name: "bad" },
        spec: specOf("bad", "good"),
        status: {
          trustBundle: {
            roots: [
              {
                fingerprintSha256: "00".repeat(32),
                subject: "CN=old",
                notAfter: "2099-01-01T00:00:00Z",
                pem: "not PEM",
                firstPublished: now,
                retiredAt: now,
              },
            ],
          },
        },
      },
    ];
    const r = new SignerRegistry(
      { signers: () => withBadStatus, secret: () => secretOf(ca.files), namespaces: () => [] },
      "csr-signer",
    );
    expect(() => r.rebuild()).not.to.throw();
    expect(r.forSignerName("example.com/bad")!.problem?.reason).to.equal("InvalidTrustBundleStatus");
    expect(r.forSignerName("example.com/good")!.bundle?.certificates).to.have.length(1);
  });

  it("the same bad bytes are parsed once; new bytes are parsed again; a file over the cap is never parsed", async () => {
    const ca = await makeTestCertificateAuthority();
    const parses: string[] = [];
    let bad = secretOf({ ...ca.files, "ca-cert.pem": "junk" });
    const r = new SignerRegistry(
      {
        signers: () => signers,
        secret: (_ns, name) => (name === "bad" ? bad : secretOf(ca.files)),
        namespaces: () => [],
      },
      "csr-signer",
      () => new Date(),
      (signerName, result) => parses.push(`${signerName} ${result}`),
    );
    for (let round = 0; round < 5; round++) r.rebuild();
    expect(parses).to.deep.equal(["example.com/good loaded", "example.com/bad refused"]);
    expect(r.forSignerName("example.com/bad")!.problem?.reason).to.equal(
      "CertificateAuthorityMalformedCertificate",
    );
    bad = secretOf({ ...ca.files, "ca-cert.pem": "other junk" });
    r.rebuild();
    r.rebuild();
    expect(parses.filter((p) => p === "example.com/bad refused")).to.have.length(2);
    bad = secretOf({ ...ca.files, "ca-cert.pem": "A".repeat(maximumCertificateAuthorityFileBytes + 1) });
    r.rebuild();
    expect(parses.filter((p) => p === "example.com/bad refused")).to.have.length(2);
    const tooLarge = r.forSignerName("example.com/bad")!.problem!;
    expect(tooLarge.reason).to.equal("CertificateAuthorityTooLarge");
    expect(tooLarge.message).to.contain(`ca-cert.pem is ${maximumCertificateAuthorityFileBytes + 1} bytes`);
  });

  it("material that is not yet valid is parsed again on later rounds (it becomes valid in place)", async () => {
    let clock = Date.now();
    const ca = await makeTestCertificateAuthority();
    const parses: string[] = [];
    const r = new SignerRegistry(
      { signers: () => [signers[0]!], secret: () => secretOf(ca.files), namespaces: () => [] },
      "csr-signer",
      () => new Date(clock),
      (_signerName, result) => parses.push(result),
    );
    clock -= 86400 * 1000; // a day before the CA's NotBefore
    r.rebuild();
    expect(r.forSignerName("example.com/good")!.problem?.reason).to.equal("CertificateAuthorityNotYetValid");
    clock += 2 * 86400 * 1000;
    r.rebuild();
    expect(parses).to.deep.equal(["refused", "loaded"]);
    expect(r.forSignerName("example.com/good")!.problem?.reason).to.equal("RootNotYetPublished");
  });

  it("refresh of a deleted owner hands its signer name to the Signer that was refused it", async () => {
    const ca = await makeTestCertificateAuthority();
    let objects: SignerObject[] = [
      {
        metadata: { name: "first", creationTimestamp: "2026-01-01T00:00:00Z" },
        spec: specOf("shared", "ca"),
      },
      {
        metadata: { name: "second", creationTimestamp: "2026-02-01T00:00:00Z" },
        spec: specOf("shared", "ca"),
      },
    ];
    const r = new SignerRegistry(
      { signers: () => objects, secret: () => secretOf(ca.files), namespaces: () => [] },
      "csr-signer",
    );
    r.rebuild();
    expect(r.forObjectName("second")!.problem?.reason).to.equal("DuplicateSignerName");
    objects = objects.filter((object) => object.metadata?.name !== "first");
    expect(r.refresh("first").claimsChanged).to.deep.equal(["second"]);
    expect(r.forObjectName("first")).to.equal(undefined);
    expect(r.forSignerName("example.com/shared")!.objectName).to.equal("second");
  });
});

describe("SignerRegistry with certificateAuthority.secretNamespace (the CA Secret in a tenant namespace)", function () {
  this.timeout(20_000);
  const clock = Date.now();
  const tenantSigner: SignerObject = {
    metadata: { name: "foo", generation: 1 },
    spec: {
      signerName: "example.com/foo",
      certificateAuthority: { secretName: "foo-cacerts", secretNamespace: "foo" },
      trustBundle: { minimumRootPublication: "0s" },
      policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: ["foo"] } },
    },
  };

  it("reads the Secret in that namespace only, says which Signers use it, and reports the Secrets in use", async () => {
    const ca = await makeTestCertificateAuthority();
    const lookups: string[] = [];
    const inUse: string[][] = [];
    const r = new SignerRegistry(
      {
        signers: () => [tenantSigner],
        secret: (namespace, name) => {
          lookups.push(`${namespace}/${name}`);
          return namespace === "foo" ? secretOf(ca.files) : undefined;
        },
        namespaces: () => [],
        tenantSecretsInUse: (keys) => inUse.push([...keys]),
      },
      "csr-signer",
      () => new Date(clock),
    );
    r.rebuild();
    r.markPublished("foo");
    r.rebuild();
    expect(r.forSignerName("example.com/foo")!.problem).to.equal(undefined);
    expect(new Set(lookups)).to.deep.equal(new Set(["foo/foo-cacerts"]));
    expect(inUse.at(-1)).to.deep.equal(["foo/foo-cacerts"]);
    expect(r.usingSecret("foo-cacerts", "foo")).to.deep.equal(["foo"]);
    // The same name in the controller's namespace is another Secret.
    expect(r.usingSecret("foo-cacerts")).to.deep.equal([]);
  });

  it("a Secret it may not read: not ready with the lookup's reason and message, looked at again in 30 s; the previous CA signs on (Degraded)", async () => {
    const ca = await makeTestCertificateAuthority();
    let forbidden = false;
    const r = new SignerRegistry(
      {
        signers: () => [tenantSigner],
        secret: () => {
          if (forbidden) throw new SecretUnavailableError("SecretAccessForbidden", "add the Role");
          return secretOf(ca.files);
        },
        namespaces: () => [],
      },
      "csr-signer",
      () => new Date(clock),
    );
    forbidden = true;
    r.rebuild();
    const waiting = r.forObjectName("foo")!;
    expect(waiting.problem).to.deep.equal({ reason: "SecretAccessForbidden", message: "add the Role" });
    expect(waiting.recheckAt?.getTime()).to.equal(clock + 30_000);
    expect(r.desiredStatus("foo")!.conditions!.find((c) => c.type === "Ready")).to.include({
      status: "False",
      reason: "SecretAccessForbidden",
    });
    forbidden = false;
    r.rebuild();
    r.markPublished("foo");
    r.rebuild();
    const ready = r.forObjectName("foo")!;
    expect(ready.problem).to.equal(undefined);
    forbidden = true; // the Role was removed: what the cache held keeps signing
    r.rebuild();
    expect(r.forObjectName("foo")!.authority).to.equal(ready.authority);
    expect(r.forObjectName("foo")!.degraded?.reason).to.equal("SecretAccessForbidden");
  });
});
