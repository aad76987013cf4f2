import { expect } from "chai";
import { CsrFirstSeen } from "../../../src/controller/csr-first-seen.js";
import { CsrSigning } from "../../../src/controller/csr-signing.js";
import { cachedCsr } from "../../../src/controller/csr-cache.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { WrittenCertificates } from "../../../src/controller/written-certificates.js";
import { leafNotAfterMs } from "../../../src/pki/certificate.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { jsonLogger } from "../../../src/logger.js";
import type { CsrApi } from "../../../src/controller/csr-api.js";
import type { SignerRegistry } from "../../../src/controller/signer-registry.js";
import { X509Certificate } from "node:crypto";
import { KubeApiError } from "../../../src/kube/client.js";
import { systemIssuanceEnvironment } from "../../../src/pki/issuance.js";
import { buildTestCertificateRequest, testKey } from "../../support/pki.js";
import { signerRegistryFor } from "../../support/ready-signer-registry.js";

describe("CsrSigning: WaitingApproval after a grace period", () => {
  let now = 0;
  const reasons: string[] = [];
  const signing = new CsrSigning(
    {} as unknown as SignerRegistry, // not consulted while a CSR waits for approval
    {} as CsrApi,
    { record: (_target, _type, reason) => void reasons.push(reason) },
    new ControllerMetrics(),
    jsonLogger({ level: "error", write: () => undefined }),
    { now: () => new Date(now), randomBytes: () => new Uint8Array() },
    10_000,
  );
  const csr = { metadata: { name: "a" }, spec: { signerName: "example.com/foo" } };

  it("comes back when the grace ends, records one Event then, and none again; a forgotten CSR waits afresh", () => {
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "after", milliseconds: 10_000 });
    now = 4_000; // another event meanwhile (an unrelated update): the grace still counts from the first
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "after", milliseconds: 6_000 });
    expect(reasons).to.deep.equal([]);
    now = 10_000;
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "done" });
    now = 60_000;
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "done" });
    expect(reasons).to.deep.equal(["WaitingApproval"]);
    signing.forget("a"); // approved, or gone
    expect(signing.waitForApproval(csr)).to.deep.equal({ kind: "after", milliseconds: 10_000 });
  });

  it("tells the cache handler how long the grace has left, counting from that first sighting", () => {
    const other = { metadata: { name: "b" }, spec: { signerName: "example.com/foo" } };
    now = 100_000;
    expect(signing.approvalGraceLeftMs(other)).to.equal(10_000); // queued for then, not at once
    now = 103_000;
    expect(signing.approvalGraceLeftMs(other)).to.equal(7_000); // an unrelated update meanwhile
    now = 110_000;
    expect(signing.approvalGraceLeftMs(other)).to.equal(0);
    expect(signing.waitForApproval(other)).to.deep.equal({ kind: "done" });
    expect(reasons).to.deep.equal(["WaitingApproval", "WaitingApproval"]);
    expect(signing.approvalGraceLeftMs(other)).to.equal(0); // told: queued at once, and done at once
  });
});

describe("CsrSigning: one signing log line per signature (the soak's audit trail)", () => {
  it("logs CSR name, uid, serial, the resourceVersion precondition and the write's outcome, for a refused write too, and no key material", async function () {
    this.timeout(20_000);
    const registry = await signerRegistryFor("log");
    const lines: string[] = [];
    const written: string[] = [];
    const outcomes: ("conflict" | "ok")[] = ["conflict", "ok"];
    const api: CsrApi = {
      read: () => Promise.resolve(csr), // after the conflict: still without a certificate, so retry
      patchStatus: (_name, _resourceVersion, status) => {
        written.push(String(status.certificate));
        return Promise.resolve(outcomes.shift()!);
      },
      patchStatusJson: () => Promise.reject(new Error("no condition expected")),
      replaceStatus: () => Promise.reject(new Error("no PUT expected: the copy has no onlyKeptFields")),
    };
    const signing = new CsrSigning(
      registry,
      api,
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "info", write: (line) => void lines.push(line) }),
      systemIssuanceEnvironment,
    );
    const csr = serverCsr("csr-log", "uid-1", "41", "log");
    expect(await signing.sign(csr, csr)).to.deep.equal({ kind: "retry", reason: "Conflict" });
    expect(await signing.sign(csr, csr)).to.deep.equal({ kind: "done" });
    const signatures = lines
      .map((line) => JSON.parse(line) as Record<string, string>)
      .filter((entry) => entry.msg === "signed certificate");
    expect(
      signatures.map((entry) => [entry.csr, entry.uid, entry.resourceVersion, entry.written]),
    ).to.deep.equal([
      ["csr-log", "uid-1", "41", "conflict"],
      ["csr-log", "uid-1", "41", "ok"],
    ]);
    const serialOf = (base64: string): string =>
      new X509Certificate(Buffer.from(base64, "base64").toString()).serialNumber
        .toLowerCase()
        .replace(/^0+/, "");
    expect(signatures.map((entry) => entry.serial!.replace(/^0+/, ""))).to.deep.equal(written.map(serialOf));
    expect(signatures[0]!.serial).to.not.equal(signatures[1]!.serial);
    expect(Number.isNaN(Date.parse(signatures[0]!.writeStartedAt!))).to.equal(false);
    expect(lines.join("\n")).to.not.match(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});

describe("CsrSigning: a write not sent because the lease was lost", () => {
  it("looks at the CSR again a second later (no retry backoff, no Failed condition) and logs the signature as not sent", async function () {
    this.timeout(20_000);
    const registry = await signerRegistryFor("not-sent");
    const lines: string[] = [];
    const signing = new CsrSigning(
      registry,
      {
        read: () => Promise.reject(new Error("no read expected")),
        patchStatus: () => Promise.resolve("not sent"),
        patchStatusJson: () => Promise.reject(new Error("no condition expected")),
        replaceStatus: () => Promise.reject(new Error("no PUT expected: the copy has no onlyKeptFields")),
      },
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "info", write: (line) => void lines.push(line) }),
      systemIssuanceEnvironment,
    );
    const csr = serverCsr("csr-not-sent", "uid-2", "7", "not-sent");
    // Looked at again in a second: a late renewal can make isLeader false with no takeover to follow.
    expect(await signing.sign(csr, csr)).to.deep.equal({ kind: "after", milliseconds: 1000 });
    const entries = lines.map((line) => JSON.parse(line) as Record<string, string>);
    expect(
      entries.filter((entry) => entry.msg === "signed certificate").map((entry) => entry.written),
    ).to.deep.equal(["not sent"]);
    expect(entries.some((entry) => "identity" in entry)).to.equal(false); // nothing logged as issued
  });
});

describe("CsrSigning: the intent is logged before the write goes out", () => {
  it("logs 'writing certificate' with CSR name, uid, the serial sent and the resourceVersion precondition before the write, so a write that never returns (a replica SIGKILLed meanwhile) still leaves its serial", async function () {
    this.timeout(20_000);
    const registry = await signerRegistryFor("intent");
    const lines: string[] = [];
    let linesWhenSent: string[] = [];
    let sent!: (write: { resourceVersion: string; certificate: string }) => void;
    const writeSent = new Promise<{ resourceVersion: string; certificate: string }>(
      (resolve) => (sent = resolve),
    );
    const signing = new CsrSigning(
      registry,
      {
        read: () => Promise.reject(new Error("no read expected")),
        patchStatus: (_name, resourceVersion, status) => {
          linesWhenSent = [...lines];
          sent({ resourceVersion, certificate: String(status.certificate) });
          return new Promise(() => undefined); // never answered: the process dies with the write in flight
        },
        patchStatusJson: () => Promise.reject(new Error("no condition expected")),
        replaceStatus: () => Promise.reject(new Error("no PUT expected: the copy has no onlyKeptFields")),
      },
      { record: () => undefined },
      new ControllerMetrics(),
      // As the controller logs: info lines held (longer than this test runs), the intent flushed.
      jsonLogger({
        level: "info",
        write: (text) => void lines.push(...text.trimEnd().split("\n")),
        holdInfoMs: 60_000,
      }),
      systemIssuanceEnvironment,
    );
    const csr = serverCsr("csr-intent", "uid-3", "12", "intent");
    void signing.sign(csr, csr); // never settles: its write is never answered
    const write = await writeSent;
    const entries = linesWhenSent.map((line) => JSON.parse(line) as Record<string, string>);
    const intents = entries.filter((entry) => entry.msg === "writing certificate");
    const sentSerial = new X509Certificate(Buffer.from(write.certificate, "base64").toString()).serialNumber;
    expect(intents.map((entry) => [entry.csr, entry.uid, entry.resourceVersion, entry.signer])).to.deep.equal(
      [["csr-intent", "uid-3", "12", "example.com/intent"]],
    );
    expect(intents[0]!.serial!.replace(/^0+/, "")).to.equal(sentSerial.toLowerCase().replace(/^0+/, ""));
    expect(write.resourceVersion).to.equal("12");
    expect(Number.isNaN(Date.parse(intents[0]!.writeStartedAt!))).to.equal(false);
    expect(entries.some((entry) => entry.msg === "signed certificate")).to.equal(false); // outcome unknown
    expect(lines.join("\n")).to.not.match(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});

/** A CSR of `admin` for web.example.test (server auth) under example.com/<signer>, as the cache holds it. */
function serverCsr(name: string, uid: string, resourceVersion: string, signer: string) {
  const requestPem = buildTestCertificateRequest({
    key: testKey("ecdsa-p256"),
    subjectAltNames: { dns: ["web.example.test"] },
  });
  return {
    metadata: { name, uid, resourceVersion },
    spec: {
      signerName: `example.com/${signer}`,
      username: "admin",
      usages: ["digital signature", "server auth"],
      request: Buffer.from(requestPem).toString("base64"),
    },
  };
}

describe("CsrSigning: the issuance latency of a CSR deleted while its write is in flight", () => {
  it("is still observed: the first sighting is read before the write, whose answer may come after the deletion's event", async function () {
    this.timeout(20_000);
    const registry = await signerRegistryFor("deleted");
    const firstSeen = new CsrFirstSeen();
    const metrics = new ControllerMetrics();
    const csr = serverCsr("csr-deleted", "uid-4", "5", "deleted");
    const signing = new CsrSigning(
      registry,
      {
        read: () => Promise.reject(new Error("no read expected")),
        patchStatus: () => {
          firstSeen.forget(csr); // the deletion's cache event, handled before the write's answer
          return Promise.resolve("ok");
        },
        patchStatusJson: () => Promise.reject(new Error("no condition expected")),
        replaceStatus: () => Promise.reject(new Error("no PUT expected: the copy has no onlyKeptFields")),
      },
      { record: () => undefined },
      metrics,
      jsonLogger({ level: "error", write: () => undefined }),
      systemIssuanceEnvironment,
      undefined,
      firstSeen,
    );
    firstSeen.saw(csr);
    expect(await signing.sign(csr, csr)).to.deep.equal({ kind: "done" });
    const latency = await metrics.issuanceLatency.get();
    const count = latency.values.find((sample) => sample.metricName?.endsWith("_count"));
    expect(count?.value).to.equal(1);
    expect(firstSeen.size).to.equal(0);
  });
});

describe("CsrSigning: how the certificate is written", () => {
  const writes = (): { api: CsrApi; log: string[] } => {
    const log: string[] = [];
    return {
      log,
      api: {
        read: () => Promise.reject(new Error("no read expected")),
        patchStatus: (name, resourceVersion, status) => {
          log.push(`PATCH ${name} ${resourceVersion} ${Object.keys(status).join(",")}`);
          return Promise.resolve("ok");
        },
        replaceStatus: (csr, status) => {
          log.push(
            `PUT ${csr.metadata!.name} ${csr.metadata!.resourceVersion} ${Object.keys(status).join(",")}`,
          );
          return Promise.resolve("ok");
        },
        patchStatusJson: () => Promise.reject(new Error("no condition expected")),
      },
    };
  };

  it("PUTs /status (as kube-controller-manager does) when the cached copy has no client-set metadata and only Approved conditions, and merge-patches otherwise", async function () {
    this.timeout(20_000);
    const registry = await signerRegistryFor("put");
    const { api, log } = writes();
    const signing = new CsrSigning(
      registry,
      api,
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "error", write: () => undefined }),
      systemIssuanceEnvironment,
    );
    const approved = { type: "Approved", status: "True", reason: "Test", message: "approved" };
    const plain = { ...serverCsr("csr-put", "uid-5", "20", "put"), status: { conditions: [approved] } };
    const bare = { ...plain, metadata: { ...plain.metadata, onlyKeptFields: true as const } };
    const withOtherCondition = {
      ...bare,
      metadata: { ...bare.metadata, name: "csr-other-condition" },
      status: { conditions: [approved, { type: "ExampleReviewed", status: "True", message: "cut" }] },
    };
    expect(await signing.sign(bare, bare)).to.deep.equal({ kind: "done" });
    expect(await signing.sign(withOtherCondition, withOtherCondition)).to.deep.equal({ kind: "done" });
    const labelled = { ...plain, metadata: { ...plain.metadata, name: "csr-labelled" } };
    expect(await signing.sign(labelled, labelled)).to.deep.equal({ kind: "done" });
    expect(log).to.deep.equal([
      "PUT csr-put 20 certificate",
      "PATCH csr-other-condition 20 certificate",
      "PATCH csr-labelled 20 certificate",
    ]);
  });
});

describe("CsrSigning: the NotAfter of a written certificate, for the cache's copy of its echo", () => {
  /** A signer whose merge-patch writes answer `patchStatus`, telling `written` of each certificate. */
  const signingTelling = async (
    signer: string,
    written: WrittenCertificates,
    patchStatus: CsrApi["patchStatus"],
  ): Promise<CsrSigning> =>
    new CsrSigning(
      await signerRegistryFor(signer),
      {
        read: () => Promise.resolve(undefined),
        patchStatus,
        patchStatusJson: () => Promise.reject(new Error("no condition expected")),
        replaceStatus: () => Promise.reject(new Error("no PUT expected: the copy has no onlyKeptFields")),
      },
      { record: () => undefined },
      new ControllerMetrics(),
      jsonLogger({ level: "error", write: () => undefined }),
      systemIssuanceEnvironment,
      undefined,
      undefined,
      written,
    );

  it("is told before the write, and the echo's cached copy carries it without reading the chain: the leaf's own NotAfter", async function () {
    this.timeout(20_000);
    const written = new WrittenCertificates();
    let echo: CsrObject | undefined;
    const csr = serverCsr("csr-echo", "uid-6", "30", "echo");
    const signing = await signingTelling("echo", written, (name, _resourceVersion, status) => {
      expect(written.size, "told before the write is sent").to.equal(1);
      echo = { ...csr, metadata: { ...csr.metadata, name, resourceVersion: "31" }, status };
      return Promise.resolve("ok");
    });
    expect(await signing.sign(csr, csr)).to.deep.equal({ kind: "done" });
    const certificate = echo!.status!.certificate!;
    const leaf = new X509Certificate(Buffer.from(certificate, "base64"));
    const ours = (): boolean => true;
    const cached = cachedCsr(echo!, ours, written);
    expect(cached.status?.certificateOmitted).to.deep.equal({
      reason: "Ours",
      notAfterMs: leafNotAfterMs(certificate),
    });
    expect(leafNotAfterMs(certificate)).to.equal(Date.parse(leaf.validTo));
    expect(written.size, "taken once (the only sign it was used: both paths give the same value)").to.equal(
      0,
    );
  });

  for (const outcome of ["conflict", "error"] as const)
    it(`is forgotten when the write ${outcome === "error" ? "fails" : "loses a race"}: no echo carries it`, async function () {
      this.timeout(20_000);
      const written = new WrittenCertificates();
      const csr = serverCsr(`csr-${outcome}`, "uid-7", "40", `echo-${outcome}`);
      const signing = await signingTelling(`echo-${outcome}`, written, () => {
        expect(written.size).to.equal(1);
        return outcome === "error" ? Promise.reject(new Error("timeout")) : Promise.resolve("conflict");
      });
      await signing.sign(csr, csr);
      expect(written.size).to.equal(0);
    });
});

describe("CsrSigning: a refused certificate write (403) names the grant that is missing", () => {
  const refusals = {
    status:
      'certificatesigningrequests.certificates.k8s.io "csr-rbac" is forbidden: User "system:serviceaccount:csr-signer:csr-signer" cannot update resource "certificatesigningrequests/status" in API group "certificates.k8s.io" at the cluster scope',
    sign: 'certificatesigningrequests.certificates.k8s.io "csr-rbac" is forbidden: user not permitted to sign requests with signerName "example.com/rbac"',
  };
  for (const [refused, expected] of [
    ["status", "verbs update and patch on certificates.k8s.io certificatesigningrequests/status"],
    ["sign", "verb sign on certificates.k8s.io signers/example.com/rbac"],
  ] as const)
    it(`the authorizer refusing ${refused === "status" ? "the status subresource" : "the signer name"}: the Warning names ${expected}`, async function () {
      this.timeout(20_000);
      const registry = await signerRegistryFor("rbac");
      const messages: string[] = [];
      const signing = new CsrSigning(
        registry,
        {
          read: () => Promise.reject(new Error("no read expected")),
          patchStatus: () => Promise.reject(new KubeApiError(403, "Forbidden", refusals[refused])),
          replaceStatus: () => Promise.reject(new Error("no PUT expected: the copy has no onlyKeptFields")),
          patchStatusJson: () => Promise.reject(new Error("no condition expected")),
        },
        { record: (_target, _type, _reason, message) => void messages.push(message) },
        new ControllerMetrics(),
        jsonLogger({ level: "error", write: () => undefined }),
        systemIssuanceEnvironment,
      );
      const csr = serverCsr("csr-rbac", "uid-6", "3", "rbac");
      expect(await signing.sign(csr, csr)).to.deep.equal({ kind: "retry", reason: "CertificateWriteFailed" });
      expect(messages).to.have.length(1);
      expect(messages[0]).to.contain(expected);
    });
});
