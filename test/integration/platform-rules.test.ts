/**
 * The platform rules the controller relies on, pinned against a real kube-apiserver: who the API server
 * says asked for a certificate, which RBAC verbs gate /approval and /status, how status.certificate is
 * encoded, and that a certificate, once written, cannot be replaced.
 * If one of these tests fails after a Kubernetes upgrade, the controller's assumptions need review.
 */
import { randomBytes } from "node:crypto";
import fsp from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import {
  AuthenticationV1Api,
  CertificatesV1Api,
  type KubeConfig,
  type V1CertificateSigningRequest,
} from "@kubernetes/client-node";
import { apiErrorStatus, type ApiErrorStatus } from "../../src/kube/client.js";
import { createSelfSignedEcCa } from "../support/control-plane/certificates.js";
import { openssl } from "../support/openssl.js";
import {
  asServiceAccount,
  grantClusterRole,
  grantSignerVerbs,
  impersonatingKubeConfig,
  serviceAccountSubject,
  uniqueName,
  userSubject,
  type Grant,
  type SignerVerb,
} from "../support/identities.js";
import { controlPlane } from "./setup.js";

const SIGNER_NAME = "example.com/foo";
const OTHER_SIGNER_NAME = "example.com/bar";
const WORKLOAD_USAGES = ["digital signature", "key encipherment", "server auth", "client auth"];
const SPIFFE_ID = "spiffe://cluster.local/ns/foo/sa/default";

describe("platform rules the signer relies on (real kube-apiserver)", function () {
  let admin: KubeConfig;
  let adminCertificates: CertificatesV1Api;
  let workDir: string;
  let testCa: { certificatePath: string; keyPath: string };
  let csrPem: string;
  const grants: Grant[] = [];
  const csrNames: string[] = [];

  before(async function () {
    admin = controlPlane().kubeConfig();
    adminCertificates = admin.makeApiClient(CertificatesV1Api);
    // Inside the control plane's folder, so an interrupted run leaves nothing behind either.
    workDir = await fsp.mkdtemp(path.join(controlPlane().dir, "platform-rules-"));
    testCa = await createTestCa(workDir);
    csrPem = await createWorkloadCsr(workDir, SPIFFE_ID);
  });

  afterEach(async function () {
    for (const name of csrNames.splice(0)) {
      await adminCertificates.deleteCertificateSigningRequest({ name }).catch(ignoreNotFound);
    }
    for (const grant of grants.splice(0)) await grant.revoke();
  });

  after(async function () {
    if (workDir !== undefined) await fsp.rm(workDir, { recursive: true, force: true });
  });

  /** Creates a workload CSR for SIGNER_NAME as `requester` (default: admin). */
  async function createCsr(requester: KubeConfig = admin): Promise<V1CertificateSigningRequest> {
    const name = uniqueName("platform-rules");
    csrNames.push(name);
    return requester.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
      body: {
        metadata: { name },
        spec: {
          request: base64(csrPem),
          signerName: SIGNER_NAME,
          usages: WORKLOAD_USAGES,
          expirationSeconds: 3600,
        },
      },
    });
  }

  /** A fresh user with `verbs` on `signerNames` (plus the CSR access an approver or signer needs). */
  async function userWithSignerVerbs(signerNames: string[], verbs: SignerVerb[]): Promise<KubeConfig> {
    const user = uniqueName("csr-signer-test:user");
    grants.push(await grantSignerVerbs(admin, { subject: userSubject(user), signerNames, verbs }));
    return impersonatingKubeConfig(admin, user, ["system:authenticated"]);
  }

  async function approveAsAdmin(csr: V1CertificateSigningRequest): Promise<V1CertificateSigningRequest> {
    return adminCertificates.replaceCertificateSigningRequestApproval({
      name: csr.metadata!.name!,
      body: withApprovedCondition(csr),
    });
  }

  function writeCertificate(
    signer: KubeConfig,
    csr: V1CertificateSigningRequest,
    certificatePem: string,
  ): Promise<V1CertificateSigningRequest> {
    return signer.makeApiClient(CertificatesV1Api).replaceCertificateSigningRequestStatus({
      name: csr.metadata!.name!,
      body: { ...csr, status: { ...csr.status, certificate: base64(certificatePem) } },
    });
  }

  it("the harness impersonates a user with several groups and extra values (one header line each)", async function () {
    const user = uniqueName("csr-signer-test:whoami");
    const kubeConfig = impersonatingKubeConfig(admin, user, ["group-a", "group-b"], {
      "example.com/tenant": ["t1", "t2"],
    });
    const review = await kubeConfig.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    const userInfo = review.status?.userInfo;
    expect(userInfo?.username).to.equal(user);
    expect(userInfo?.groups).to.have.members(["group-a", "group-b", "system:authenticated"]);
    expect(userInfo?.extra).to.deep.equal({ "example.com/tenant": ["t1", "t2"] });
  });

  it("records the requesting service account in spec.username and spec.groups (istiod as registration authority)", async function () {
    grants.push(
      await grantClusterRole(admin, serviceAccountSubject("istio-system", "istiod"), [
        {
          apiGroups: ["certificates.k8s.io"],
          resources: ["certificatesigningrequests"],
          verbs: ["create", "get"],
        },
      ]),
    );
    const istiod = asServiceAccount(admin, "istio-system", "istiod");

    const created = await createCsr(istiod);
    const readBack = await adminCertificates.readCertificateSigningRequest({ name: created.metadata!.name! });

    expect(readBack.spec.username).to.equal("system:serviceaccount:istio-system:istiod");
    expect(readBack.spec.groups).to.include.members([
      "system:serviceaccounts",
      "system:serviceaccounts:istio-system",
      "system:authenticated",
    ]);
    expect(readBack.spec.signerName).to.equal(SIGNER_NAME);
    expect(readBack.spec.usages).to.deep.equal(WORKLOAD_USAGES);
    // format: byte fields stay base64 strings in client-node, on the way in and on the way out.
    expect(readBack.spec.request).to.equal(base64(csrPem));
    expect(Buffer.from(readBack.spec.request, "base64").toString("utf8")).to.equal(csrPem);
  });

  describe("/approval requires verb approve on signers/<signerName>", function () {
    it("refuses (403) an identity that may update /approval but approve only another signer", async function () {
      const csr = await createCsr();
      const approver = await userWithSignerVerbs([OTHER_SIGNER_NAME], ["approve"]);

      const error = await expectApiError(
        approver.makeApiClient(CertificatesV1Api).replaceCertificateSigningRequestApproval({
          name: csr.metadata!.name!,
          body: withApprovedCondition(csr),
        }),
      );

      expect(error.code).to.equal(403);
      expect(error.reason).to.equal("Forbidden");
      expect(error.message).to.include(`not permitted to approve requests with signerName "${SIGNER_NAME}"`);
      const unchanged = await adminCertificates.readCertificateSigningRequest({ name: csr.metadata!.name! });
      expect(unchanged.status?.conditions ?? []).to.deep.equal([]);
    });

    it("accepts an identity with approve on signers/example.com/foo", async function () {
      const csr = await createCsr();
      const approver = await userWithSignerVerbs([SIGNER_NAME], ["approve"]);

      const approved = await approver
        .makeApiClient(CertificatesV1Api)
        .replaceCertificateSigningRequestApproval({
          name: csr.metadata!.name!,
          body: withApprovedCondition(csr),
        });

      const condition = approved.status?.conditions?.find((candidate) => candidate.type === "Approved");
      expect(condition?.status).to.equal("True");
      expect(condition?.reason).to.equal("PlatformRulesTest");
    });

    it("accepts approve granted for the whole domain as signers/example.com/*", async function () {
      const csr = await createCsr();
      const approver = await userWithSignerVerbs(["example.com/*"], ["approve"]);

      const approved = await approver
        .makeApiClient(CertificatesV1Api)
        .replaceCertificateSigningRequestApproval({
          name: csr.metadata!.name!,
          body: withApprovedCondition(csr),
        });

      expect(approved.status?.conditions?.map((condition) => condition.type)).to.deep.equal(["Approved"]);
    });
  });

  describe("status.certificate requires verb sign on signers/<signerName>", function () {
    it("refuses (403) an identity that may update /status but sign only another signer", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const certificatePem = await issueCertificate(workDir, testCa, csrPem);
      const signer = await userWithSignerVerbs([OTHER_SIGNER_NAME], ["sign"]);

      const error = await expectApiError(writeCertificate(signer, csr, certificatePem));

      expect(error.code).to.equal(403);
      expect(error.reason).to.equal("Forbidden");
      expect(error.message).to.include(`not permitted to sign requests with signerName "${SIGNER_NAME}"`);
      const unchanged = await adminCertificates.readCertificateSigningRequest({ name: csr.metadata!.name! });
      expect(unchanged.status?.certificate).to.equal(undefined);
    });

    it("accepts an identity with sign; the field is base64 of the PEM and client-node does not encode it", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const certificatePem = await issueCertificate(workDir, testCa, csrPem);
      const signer = await userWithSignerVerbs([SIGNER_NAME], ["sign"]);

      const written = await writeCertificate(signer, csr, certificatePem);

      expect(written.status?.certificate).to.equal(base64(certificatePem));
      const readBack = await adminCertificates.readCertificateSigningRequest({ name: csr.metadata!.name! });
      expect(Buffer.from(readBack.status!.certificate!, "base64").toString("utf8")).to.equal(certificatePem);
    });
  });

  describe("what the API server does not check when status.certificate is written", function () {
    it("accepts a certificate on a CSR that is not Approved: gating on approval is the signer's job", async function () {
      const csr = await createCsr();
      const certificatePem = await issueCertificate(workDir, testCa, csrPem);

      const written = await writeCertificate(admin, csr, certificatePem);

      expect(written.status?.conditions ?? []).to.deep.equal([]);
      expect(written.status?.certificate).to.equal(base64(certificatePem));
    });

    it("accepts a certificate unrelated to the request (here the CA's own): matching it is the signer's job", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const unrelatedPem = await fsp.readFile(testCa.certificatePath, "utf8");

      const written = await writeCertificate(admin, csr, unrelatedPem);

      expect(written.status?.certificate).to.equal(base64(unrelatedPem));
    });

    it("refuses (400) a PEM that is not base64-encoded: the JSON field is bytes", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const certificatePem = await issueCertificate(workDir, testCa, csrPem);

      const error = await expectApiError(
        adminCertificates.replaceCertificateSigningRequestStatus({
          name: csr.metadata!.name!,
          body: { ...csr, status: { ...csr.status, certificate: certificatePem } },
        }),
      );

      expect(error.code).to.equal(400);
      expect(error.message).to.include("illegal base64 data");
    });
  });

  describe("status.certificate is immutable once set", function () {
    it("refuses (422) a second, different certificate on the same CSR and keeps the first", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const first = await issueCertificate(workDir, testCa, csrPem);
      const second = await issueCertificate(workDir, testCa, csrPem);
      expect(second).to.not.equal(first);
      const signed = await writeCertificate(admin, csr, first);

      const error = await expectApiError(writeCertificate(admin, signed, second));

      expect(error.code).to.equal(422);
      expect(error.reason).to.equal("Invalid");
      expect(error.message).to.include("status.certificate");
      const readBack = await adminCertificates.readCertificateSigningRequest({ name: csr.metadata!.name! });
      expect(readBack.status?.certificate).to.equal(base64(first));
    });

    it("refuses (409) a second signer writing from a stale read, before validation even runs", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const first = await issueCertificate(workDir, testCa, csrPem);
      const second = await issueCertificate(workDir, testCa, csrPem);
      await writeCertificate(admin, csr, first);

      // `csr` still carries the resourceVersion from before the first write, as a second replica's cache would.
      const error = await expectApiError(writeCertificate(admin, csr, second));

      expect(error.code).to.equal(409);
      expect(error.reason).to.equal("Conflict");
    });

    it("accepts rewriting the identical certificate (a retried write is harmless)", async function () {
      const csr = await approveAsAdmin(await createCsr());
      const certificatePem = await issueCertificate(workDir, testCa, csrPem);
      const signed = await writeCertificate(admin, csr, certificatePem);

      const rewritten = await writeCertificate(admin, signed, certificatePem);

      expect(rewritten.status?.certificate).to.equal(base64(certificatePem));
    });
  });
});

function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

function withApprovedCondition(csr: V1CertificateSigningRequest): V1CertificateSigningRequest {
  return {
    ...csr,
    status: {
      ...csr.status,
      conditions: [
        ...(csr.status?.conditions ?? []),
        { type: "Approved", status: "True", reason: "PlatformRulesTest", message: "approved by a test" },
      ],
    },
  };
}

/** Awaits a call that must fail with an API error and returns that error's status. */
async function expectApiError(call: Promise<unknown>): Promise<ApiErrorStatus> {
  try {
    await call;
  } catch (error) {
    const status = apiErrorStatus(error);
    if (status === undefined) throw error;
    return status;
  }
  expect.fail("the API server accepted a request it should have refused");
}

function ignoreNotFound(error: unknown): void {
  // Deleting what a test already deleted is fine; anything else is a real failure.
  if (apiErrorStatus(error)?.code !== 404) throw error;
}

async function createTestCa(dir: string): Promise<{ certificatePath: string; keyPath: string }> {
  const base = path.join(dir, "test-ca");
  createSelfSignedEcCa(base, "/O=csr-signer tests/CN=platform rules test CA", 1);
  return { certificatePath: `${base}.crt`, keyPath: `${base}.key` };
}

/** A PKCS#10 request shaped like istiod's for a workload: EC P-256, empty subject, one SPIFFE URI SAN. */
async function createWorkloadCsr(dir: string, spiffeId: string): Promise<string> {
  const csrPath = path.join(dir, "workload.csr");
  openssl([
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    path.join(dir, "workload.key"),
    "-out",
    csrPath,
    "-subj",
    "/O=",
    "-addext",
    `subjectAltName=critical,URI:${spiffeId}`,
  ]);
  return fsp.readFile(csrPath, "utf8");
}

/** Signs the request with the test CA (random serial, so two calls give two different certificates). */
async function issueCertificate(
  dir: string,
  ca: { certificatePath: string; keyPath: string },
  requestPem: string,
): Promise<string> {
  const base = path.join(dir, uniqueName("leaf"));
  await fsp.writeFile(`${base}.csr`, requestPem);
  await fsp.writeFile(
    `${base}.ext`,
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth,clientAuth",
      `subjectAltName=critical,URI:${SPIFFE_ID}`,
    ].join("\n") + "\n",
  );
  openssl([
    "x509",
    "-req",
    "-in",
    `${base}.csr`,
    "-CA",
    ca.certificatePath,
    "-CAkey",
    ca.keyPath,
    "-set_serial",
    `0x7f${randomBytes(15).toString("hex")}`,
    "-days",
    "1",
    "-sha256",
    "-extfile",
    `${base}.ext`,
    "-out",
    `${base}.crt`,
  ]);
  return fsp.readFile(`${base}.crt`, "utf8");
}
