import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import type { PodCertificateApi } from "../../../src/controller/pod-certificate-api.js";
import type { PodCertificateRequestObject } from "../../../src/controller/pod-certificate-object.js";
import { PodCertificateReconciler } from "../../../src/controller/pod-certificate-reconciler.js";
import type { ActiveSigner } from "../../../src/controller/signer-builder.js";
import type { SignerProblem } from "../../../src/controller/signer-problem.js";
import type { SignerRegistry } from "../../../src/controller/signer-registry.js";
import { KubeApiError } from "../../../src/kube/client.js";
import { Pkcs11Error } from "../../../src/pki/pkcs11/index.js";
import { jsonLogger } from "../../../src/logger.js";
import { parseSignerSpec } from "../../../src/policy/signer-spec.js";
import { makeTestCertificateAuthority, type TestCertificateAuthority } from "../../support/pki.js";
import { podKeyFields, podTestKey } from "../../support/pod-certificates.js";

const signerName = "example.com/foo";
const spec = parseSignerSpec({
  signerName,
  certificateAuthority: { secretName: "foo-cacerts" },
  policy: { tenants: { namespaces: ["foo"] }, spiffe: { trustDomain: "cluster.local" } },
  podCertificates: {},
});

/** The reconciler's collaborators, recording what it did. */
function harness(
  signer: Partial<ActiveSigner>,
  writes: ("ok" | "conflict" | "gone" | "not sent" | Error)[] = ["ok"],
  /** Log lines as written out by the controller's logger (info lines held), when given. */
  logLines?: string[],
) {
  const done = {
    events: [] as string[],
    eventMessages: [] as string[],
    troubles: [] as SignerProblem[],
    keyFailures: [] as unknown[],
    issued: 0,
    failed: 0,
    reads: 0,
    /** The log lines written out when each status write was sent. */
    linesAtWrite: [] as string[][],
  };
  const written: Record<string, unknown>[] = [];
  let stored: PodCertificateRequestObject | undefined;
  const registry = {
    forSignerName: (name: string) =>
      name === signerName ? ({ objectName: "foo", ...signer } as ActiveSigner) : undefined,
    tenantNamespaces: () => new Set(["foo"]),
    countIssued: () => void done.issued++,
    countFailed: () => void done.failed++,
    troubles: {
      signingSucceeded: () => undefined,
      reportSigningTrouble: (_: string, trouble: SignerProblem) => void done.troubles.push(trouble),
    },
    // As TokenKeys does: a Pkcs11Error is the token's, anything else is not.
    signingKeyFailed: (_: string, _key: unknown, error: unknown): SignerProblem | undefined => {
      done.keyFailures.push(error);
      return error instanceof Pkcs11Error ? { reason: error.reason, message: error.message } : undefined;
    },
  } as unknown as SignerRegistry;
  const api: PodCertificateApi = {
    read: async () => {
      done.reads++;
      return stored;
    },
    patchStatus: async (_namespace, _name, _resourceVersion, status) => {
      done.linesAtWrite.push([...(logLines ?? [])]);
      const outcome = writes.shift() ?? "ok";
      if (outcome instanceof Error) throw outcome;
      if (outcome === "ok") written.push(status);
      return outcome;
    },
  };
  const cache = new Map<string, PodCertificateRequestObject>();
  const logger = logLines
    ? jsonLogger({
        level: "info",
        write: (text) => void logLines.push(...text.trimEnd().split("\n")),
        holdInfoMs: 60_000, // longer than the test: only a flush writes an info line out
      })
    : jsonLogger({ level: "error", write: () => undefined });
  const reconciler = new PodCertificateReconciler(
    registry,
    { get: (name, namespace) => cache.get(`${namespace}/${name}`) },
    api,
    {
      record: (_target, type, reason, message) => {
        done.events.push(`${type} ${reason}`);
        done.eventMessages.push(message);
      },
    },
    new ControllerMetrics(),
    logger,
    { now: () => new Date(), randomBytes: (size) => new Uint8Array(size).fill(7) },
    () => 0.5,
  );
  return {
    reconciler,
    logger,
    done,
    written,
    put: (pcr: PodCertificateRequestObject) =>
      cache.set(`${pcr.metadata?.namespace ?? ""}/${pcr.metadata?.name ?? ""}`, pcr),
    store: (pcr: PodCertificateRequestObject | undefined) => (stored = pcr),
  };
}

function request(
  extra: Partial<NonNullable<PodCertificateRequestObject["spec"]>> = {},
): PodCertificateRequestObject {
  return {
    metadata: { name: "r", namespace: "foo", uid: "u", resourceVersion: "1" },
    spec: {
      signerName,
      podName: "web-0",
      podUID: "pod-uid",
      serviceAccountName: "web",
      maxExpirationSeconds: 3600,
      ...podKeyFields(podTestKey("ECDSAP256"), "pod-uid", "stub"),
      ...extra,
    },
  };
}

describe("PodCertificateReconciler: gates, writes and transient trouble", function () {
  this.timeout(20_000);
  let authority: TestCertificateAuthority;
  before(async () => {
    authority = await makeTestCertificateAuthority({ name: "pods-unit" });
  });

  it("writes Issued with the chain and the window, and counts it", async () => {
    const { reconciler, done, written, put } = harness({ spec, authority: authority.authority });
    put(request());
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    const [status] = written as [
      {
        conditions: { type: string }[];
        certificateChain: string;
        notBefore: string;
        notAfter: string;
        beginRefreshAt: string;
      },
    ];
    expect(status.conditions.map((c) => c.type)).to.deep.equal(["Issued"]);
    const leaf = new X509Certificate(status.certificateChain);
    expect(new Date(leaf.validFrom).toISOString().replace(".000", "")).to.equal(status.notBefore);
    expect(Date.parse(status.notAfter) - Date.parse(status.notBefore)).to.equal(3600_000);
    expect(Date.parse(status.beginRefreshAt) - Date.parse(status.notBefore)).to.equal(0.65 * 3600_000);
    expect(done).to.deep.include({ issued: 1, failed: 0, events: ["Normal Issued"] });
  });

  it("logs 'writing pod certificate' (request, uid, serial, resourceVersion) before the write goes out, then one 'signed pod certificate' line with what became of it", async () => {
    const lines: string[] = [];
    const { reconciler, logger, done, written, put, store } = harness(
      { spec, authority: authority.authority },
      ["ok", "conflict"],
      lines,
    );
    put(request());
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    const parse = (line: string) => JSON.parse(line) as Record<string, string>;
    const [atFirstWrite] = done.linesAtWrite;
    const intents = atFirstWrite!.map(parse).filter((entry) => entry.msg === "writing pod certificate");
    const serial = new X509Certificate((written[0] as { certificateChain: string }).certificateChain)
      .serialNumber;
    expect(
      intents.map((entry) => [entry.podCertificateRequest, entry.uid, entry.resourceVersion]),
    ).to.deep.equal([["foo/r", "u", "1"]]);
    expect(intents[0]!.serial!.replace(/^0+/, "")).to.equal(serial.toLowerCase().replace(/^0+/, ""));
    expect(atFirstWrite!.map(parse).some((entry) => entry.msg === "signed pod certificate")).to.equal(false);

    // A second request whose write loses a race: its own intent, then "conflict" on its outcome line.
    store(undefined);
    put({ ...request(), metadata: { name: "s", namespace: "foo", uid: "u2", resourceVersion: "7" } });
    expect(await reconciler.reconcile("foo/s")).to.deep.equal({ kind: "done" });
    logger.flush(); // as at shutdown: the last outcome line was held
    const outcomes = lines
      .map(parse)
      .filter((entry) => entry.msg === "signed pod certificate")
      .map((entry) => [entry.podCertificateRequest, entry.written, entry.identity ?? "-"]);
    expect(outcomes).to.deep.equal([
      ["foo/r", "ok", "spiffe://cluster.local/ns/foo/sa/web"],
      ["foo/s", "conflict", "-"],
    ]);
    expect(lines.join("\n")).to.not.match(/PRIVATE KEY|BEGIN CERTIFICATE/);
  });

  it("leaves a request of a Signer that cannot sign pending, with a SignerNotReady Event, and writes nothing", async () => {
    const { reconciler, done, written, put } = harness({
      spec,
      problem: { reason: "CertificateAuthorityMissing", message: "no Secret" },
    });
    put(request());
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({
      kind: "retry",
      reason: "CertificateAuthorityMissing",
    });
    expect(written).to.deep.equal([]);
    expect(done.events).to.deep.equal(["Warning SignerNotReady"]);
  });

  it("names only the reason in the SignerNotReady Event, never the Signer's message (the tenant reads it)", async () => {
    const { reconciler, done, put } = harness({
      spec,
      problem: {
        reason: "Pkcs11PinIncorrect",
        message: "module /opt/hsm/lib.so token ca-token PIN file /pin",
      },
    });
    put(request());
    await reconciler.reconcile("foo/r");
    expect(done.eventMessages).to.have.length(1);
    expect(done.eventMessages[0])
      .to.contain("Pkcs11PinIncorrect")
      .and.not.to.match(/opt\/hsm|ca-token|\/pin/);
  });

  it("denies a request from a non-tenant namespace before any Signer-state Event, even when the Signer cannot sign", async () => {
    const { reconciler, done, written, put } = harness({
      spec,
      problem: { reason: "Pkcs11TokenUnavailable", message: "token ca-token is gone" },
    });
    put(request());
    const outsider = harness({
      spec,
      problem: { reason: "Pkcs11TokenUnavailable", message: "token ca-token is gone" },
    });
    outsider.put({ ...request(), metadata: { name: "r", namespace: "bar", uid: "u", resourceVersion: "1" } });
    expect(await reconciler.reconcile("foo/r")).to.deep.include({ kind: "retry" });
    expect(done.events).to.deep.equal(["Warning SignerNotReady"]);
    expect(written).to.deep.equal([]);
    expect(await outsider.reconciler.reconcile("bar/r")).to.deep.equal({ kind: "done" });
    expect(outsider.done.events).to.deep.equal(["Warning NamespaceNotTenant"]);
    expect(outsider.written).to.have.length(1);
    expect(JSON.stringify(outsider.written)).to.contain("Denied").and.not.to.contain("ca-token");
  });

  it("a token failure while signing leaves the request pending, fails the token key and reports the token reason", async () => {
    const ca = authority.authority;
    const tokenAuthority = {
      ...ca,
      signingKey: {
        ...ca.signingKey,
        publicKey: ca.signingKey.publicKey,
        signatureAlgorithm: ca.signingKey.signatureAlgorithm,
        description: "token key",
        sign: async () => {
          throw new Pkcs11Error("Pkcs11TokenUnavailable", "token ca-token vanished");
        },
      },
    };
    const { reconciler, done, written, put } = harness({ spec, authority: tokenAuthority });
    put(request());
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({
      kind: "retry",
      reason: "Pkcs11TokenUnavailable",
    });
    expect(done.keyFailures).to.have.length(1);
    expect(done.troubles.map((t) => t.reason)).to.deep.equal(["Pkcs11TokenUnavailable"]);
    expect(done.events).to.deep.equal(["Warning Pkcs11TokenUnavailable"]);
    expect(done.eventMessages[0]).not.to.contain("ca-token");
    expect(written).to.deep.equal([]);
  });

  it("never touches a request whose Signer has no spec.podCertificates, or one already decided", async () => {
    const { podCertificates: _, ...csrOnly } = spec;
    const first = harness({ spec: csrOnly, authority: authority.authority });
    first.put(request());
    expect(await first.reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    const second = harness({ spec, authority: authority.authority });
    second.put({ ...request(), status: { conditions: [{ type: "Denied", status: "True" }] } });
    expect(await second.reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    expect([...first.written, ...second.written, ...first.done.events, ...second.done.events]).to.deep.equal(
      [],
    );
  });

  it("reads a request cached without its key fields once, and signs what it read", async () => {
    const { reconciler, done, written, put, store } = harness({
      spec,
      authority: authority.authority,
    });
    const { stubPKCS10Request: _, ...withoutKey } = request().spec!;
    put({ ...request(), spec: { ...withoutKey, keyOmitted: true } });
    store(request());
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    expect(done.reads).to.equal(1);
    expect(written).to.have.length(1);
  });

  it("after a conflict: done when the request was decided meanwhile, retried when it was not", async () => {
    const decided = harness({ spec, authority: authority.authority }, ["conflict"]);
    decided.put(request());
    decided.store({ ...request(), status: { conditions: [{ type: "Issued", status: "True" }] } });
    expect(await decided.reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    const pending = harness({ spec, authority: authority.authority }, ["conflict"]);
    pending.put(request());
    pending.store(request());
    expect(await pending.reconciler.reconcile("foo/r")).to.deep.equal({ kind: "retry", reason: "Conflict" });
    expect(pending.done.issued).to.equal(0);
  });

  // As the CSR side: the status write asks stillLeading after the client rate limiter, and a replica
  // whose renewal was merely late (isLeader false, then true with no takeover to requeue) must look again.
  it("a write not sent because the lease was lost: looks again a second later, counting, reading and recording nothing", async () => {
    const issuing = harness({ spec, authority: authority.authority }, ["not sent"]);
    issuing.put(request());
    expect(await issuing.reconciler.reconcile("foo/r")).to.deep.equal({ kind: "after", milliseconds: 1000 });
    const refusing = harness({ spec, authority: authority.authority }, ["not sent"]);
    refusing.put({ ...request(), metadata: { name: "r", namespace: "bar", uid: "u", resourceVersion: "1" } });
    expect(await refusing.reconciler.reconcile("bar/r")).to.deep.equal({ kind: "after", milliseconds: 1000 });
    for (const { done, written } of [issuing, refusing]) {
      expect(written).to.deep.equal([]);
      expect(done).to.deep.include({ issued: 0, failed: 0, reads: 0, events: [], troubles: [] });
    }
    // Leading again: the next look writes it.
    expect(await issuing.reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    expect(issuing.done).to.deep.include({ issued: 1, events: ["Normal Issued"] });
  });

  it("a refused write (403) leaves the request pending and reports CertificateWriteFailed naming the sign verb", async () => {
    const { reconciler, done, put } = harness({ spec, authority: authority.authority }, [
      new KubeApiError(403, "Forbidden", "nope"),
    ]);
    put(request());
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({
      kind: "retry",
      reason: "CertificateWriteFailed",
    });
    expect(done.troubles[0]!.message).to.contain(`verb sign on certificates.k8s.io signers/${signerName}`);
    expect(done.events).to.deep.equal(["Warning CertificateWriteFailed"]);
    expect(done.issued).to.equal(0);
  });

  it("denies a request whose key fields cannot be read: Denied MalformedRequest", async () => {
    const { reconciler, done, written, put } = harness({ spec, authority: authority.authority });
    put(request({ stubPKCS10Request: Buffer.from("junk").toString("base64") }));
    expect(await reconciler.reconcile("foo/r")).to.deep.equal({ kind: "done" });
    expect((written[0] as { conditions: { type: string; reason: string }[] }).conditions[0]).to.include({
      type: "Denied",
      reason: "MalformedRequest",
    });
    expect(done).to.deep.include({ failed: 1, events: ["Warning MalformedRequest"] });
  });
});
