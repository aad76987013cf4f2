/**
 * Failures that show where operators look (issue 15): `kubectl get signers` columns, Events on the
 * Signer and the CSR, the csr_signer_signer_condition metric; duplicate signer names (controller and
 * ValidatingAdmissionPolicy); a missing approve grant.
 */
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import {
  buildTestCertificateRequest,
  makeTestCertificateAuthority,
  opensslVerify,
  testKey,
  type TestCertificateAuthority,
} from "../support/pki.js";
import {
  allowToRequestCertificates,
  asServiceAccount,
  grantSignerVerbs,
  serviceAccountSubject,
  uniqueName,
  type Grant,
} from "../support/identities.js";
import {
  controllerNamespace,
  createCaSecret,
  createSigner,
  deleteSigner,
  installSignerManifests,
  kubectl,
  readSigner,
  setApproval,
  startController,
  submitCsr,
  waitForCsrEvent,
  waitForOutcome,
  waitForSignerCondition,
  type RunningController,
} from "../support/controller.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

const rule = (verb: string, signerName: string): string =>
  `add to its ClusterRole: {apiGroups: ["certificates.k8s.io"], resources: ["signers"], resourceNames: ["${signerName}"], verbs: ["${verb}"]}`;

/** Events on cluster-scoped Signer `name` (the recorder writes them to default, as for CSRs). */
async function signerEvents(
  admin: KubeConfig,
  name: string,
): Promise<{ type: string; reason: string; message: string }[]> {
  const list = await admin.makeApiClient(CoreV1Api).listNamespacedEvent({
    namespace: "default",
    fieldSelector: `involvedObject.kind=Signer,involvedObject.name=${name}`,
  });
  return list.items.map((event) => ({
    type: event.type ?? "",
    reason: event.reason ?? "",
    message: event.message ?? "",
  }));
}

function waitForSignerEvent(admin: KubeConfig, name: string, reason: string, type: "Normal" | "Warning") {
  return waitFor(`the ${type} ${reason} Event of Signer ${name}`, async () =>
    (await signerEvents(admin, name)).find((event) => event.reason === reason && event.type === type),
  );
}

describe("failures that show: Signer columns, Events, metrics, duplicates, missing grants", function () {
  this.timeout(90_000);
  const suffix = uniqueName("f").slice(2);
  const mainName = `failures.csr-signer.test/main-${suffix}`;
  const dupName = `failures.csr-signer.test/dup-${suffix}`;
  const autoName = `failures.csr-signer.test/auto-${suffix}`;
  let admin: KubeConfig;
  let firstCa: TestCertificateAuthority;
  let secondCa: TestCertificateAuthority;
  let running: RunningController;
  const signerObjects: string[] = [];
  const grants: Grant[] = [];

  function signerSpec(signerName: string, secretName: string): Record<string, unknown> {
    return {
      signerName,
      certificateAuthority: { secretName },
      // The rotation case signs from the new root at once (no wait for kubelets and istiod here).
      trustBundle: { minimumRootPublication: "0s" },
      issuance: { maxDuration: "24h" },
      policy: {
        requesters: { tenantServiceAccounts: true },
        tenants: { namespaces: ["foo"] },
        spiffe: { trustDomain: "cluster.local" },
      },
    };
  }

  const request = (serviceAccount = "web") =>
    buildTestCertificateRequest({
      key: testKey("ecdsa-p256"),
      subjectAltNames: { uri: [`spiffe://cluster.local/ns/foo/sa/${serviceAccount}`] },
    });

  async function metricValue(series: string): Promise<string | undefined> {
    const [metricsAddress] = running.controller.addresses();
    const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    return text
      .split("\n")
      .find((line) => line.startsWith(`${series} `))
      ?.split(" ")[1];
  }

  before(async function () {
    this.timeout(120_000);
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    [firstCa, secondCa] = await Promise.all([
      makeTestCertificateAuthority({ name: `failures-1-${suffix}` }),
      makeTestCertificateAuthority({ name: `failures-2-${suffix}` }),
    ]);
    await createCaSecret(admin, `failures-1-${suffix}`, firstCa.files);
    await createCaSecret(admin, `failures-2-${suffix}`, secondCa.files);
    await createCaSecret(admin, `failures-main-${suffix}`, firstCa.files);
    grants.push(await allowToRequestCertificates(admin, [serviceAccountSubject("foo", "web")]));
    await admin
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: "foo" } } })
      .catch(() => undefined); // another test file made it already
    // The requester approves its own CSRs for the manual Signers (approve on the domain).
    grants.push(
      await grantSignerVerbs(admin, {
        subject: serviceAccountSubject("foo", "web"),
        signerNames: [mainName, dupName],
        verbs: ["approve"],
      }),
    );
    // sign and attest for all three names; approve for none (the Automatic Signer's test grants it).
    running = await startController(controlPlane(), [mainName, dupName, autoName]);
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") console.log(running?.logs.slice(-20).join(""));
  });

  after(async () => {
    await running?.stop();
    for (const name of signerObjects) await deleteSigner(admin, name);
    for (const grant of grants) await grant.revoke();
  });

  async function requestApproved(signerName: string): Promise<string> {
    const name = uniqueName("csr-failures");
    const web = asServiceAccount(admin, "foo", "web");
    await submitCsr(web, { name, signerName, requestPem: request() });
    await setApproval(web, name, "Approved");
    return name;
  }

  it("a refused CA update: Degraded=True in `kubectl get signers`, a Warning Event and the metric; CA loaded, rotated, root published and retired are Events", async () => {
    const objectName = `failures-main-${suffix}`;
    await createSigner(admin, objectName, signerSpec(mainName, `failures-main-${suffix}`));
    signerObjects.push(objectName);
    await waitForSignerCondition(admin, objectName, "Ready", "True");
    const loaded = await waitForSignerEvent(admin, objectName, "CertificateAuthorityLoaded", "Normal");
    expect(loaded.message).to.contain(
      `signing with O=csr-signer tests, CN=failures-1-${suffix} intermediate`,
    );
    await waitForSignerEvent(admin, objectName, "RootPublished", "Normal");

    // A broken update (another CA's key): refused, the previous CA still signs.
    await createCaSecret(admin, `failures-main-${suffix}`, {
      ...firstCa.files,
      "ca-key.pem": secondCa.files["ca-key.pem"]!,
    });
    const degraded = await waitForSignerCondition(
      admin,
      objectName,
      "Degraded",
      "True",
      "CertificateAuthorityKeyMismatch",
    );
    expect(degraded.status!.conditions!.find((c) => c.type === "Ready")!.status).to.equal("True");
    const warning = await waitForSignerEvent(admin, objectName, "CertificateAuthorityKeyMismatch", "Warning");
    expect(warning.message).to.match(/^Degraded=True: update not used, still signing with the previous CA: /);
    const table = kubectl(controlPlane(), ["get", "signers", objectName, "-o", "wide"]);
    const [header, row] = table.trim().split("\n");
    const columns = header!.split(/\s{2,}/);
    const cells = row!.split(/\s{2,}/);
    expect(cells[columns.indexOf("READY")]).to.equal("True");
    expect(cells[columns.indexOf("DEGRADED")]).to.equal("True");
    expect(cells[columns.indexOf("DEGRADED-REASON")]).to.equal("CertificateAuthorityKeyMismatch");
    const series = (type: string) =>
      `csr_signer_signer_condition{signer="${mainName}",name="${objectName}",type="${type}"}`;
    expect(await metricValue(series("Degraded"))).to.equal("1");
    expect(await metricValue(series("Ready"))).to.equal("1");
    expect(running.logs.join("")).to.contain('"reason":"CertificateAuthorityKeyMismatch"');
    // Still signing with the first CA.
    const csr = await requestApproved(mainName);
    expect(
      opensslVerify((await waitForOutcome(admin, csr)).certificatePem!, firstCa.files["root-cert.pem"]!),
    ).to.match(/: OK/);

    // A good update to another CA (another root): rotated, the old root retired, Degraded cleared.
    await createCaSecret(admin, `failures-main-${suffix}`, secondCa.files);
    await waitForSignerEvent(admin, objectName, "CertificateAuthorityRotated", "Normal");
    await waitForSignerEvent(admin, objectName, "RootRetired", "Normal");
    await waitForSignerEvent(admin, objectName, "Recovered", "Normal");
    await waitForSignerCondition(admin, objectName, "Degraded", "False");
    await waitFor("the Degraded series back to 0", async () =>
      (await metricValue(series("Degraded"))) === "0" ? true : undefined,
    );
  });

  it("two Signers claiming one signerName: the first keeps signing, the newcomer is Ready=False DuplicateSignerName with a Warning Event, publishes nothing, and nothing loops on 409", async () => {
    const first = `failures-dup-a-${suffix}`;
    const second = `failures-dup-b-${suffix}`;
    await createSigner(admin, first, signerSpec(dupName, `failures-1-${suffix}`));
    signerObjects.push(first);
    await waitForSignerCondition(admin, first, "Ready", "True");
    await createSigner(admin, second, signerSpec(dupName, `failures-2-${suffix}`));
    signerObjects.push(second);
    const refused = await waitForSignerCondition(admin, second, "Ready", "False", "DuplicateSignerName");
    const message = `spec.signerName ${dupName} belongs to Signer ${first}, which claimed it first`;
    expect(refused.status!.conditions!.find((c) => c.type === "Ready")!.message).to.equal(message);
    expect((await waitForSignerEvent(admin, second, "DuplicateSignerName", "Warning")).message).to.equal(
      `Ready=False: ${message}`,
    );
    const csr = await requestApproved(dupName);
    const chain = (await waitForOutcome(admin, csr)).certificatePem!;
    expect(opensslVerify(chain, firstCa.files["root-cert.pem"]!)).to.match(/: OK/);
    await waitForSignerCondition(admin, first, "Ready", "True");
    // Only the owner's trust bundle is published.
    const bundles = JSON.parse(kubectl(controlPlane(), ["get", "clustertrustbundles", "-o", "json"])) as {
      items: { spec: { signerName: string; trustBundle: string } }[];
    };
    const published = bundles.items.filter((bundle) => bundle.spec.signerName === dupName);
    expect(published).to.have.length(1);
    const body = (pem: string) => pem.split("\n")[1]!;
    expect(published[0]!.spec.trustBundle).to.contain(body(firstCa.files["root-cert.pem"]!));
    expect(published[0]!.spec.trustBundle).not.to.contain(body(secondCa.files["root-cert.pem"]!));
    // Deterministic across restarts: a new controller keeps the same owner.
    const firstLogs = running.logs;
    await running.stop();
    running = await startController(controlPlane(), [mainName, dupName, autoName]);
    const again = await requestApproved(dupName);
    expect(
      opensslVerify((await waitForOutcome(admin, again)).certificatePem!, firstCa.files["root-cert.pem"]!),
    ).to.match(/: OK/);
    expect((await readSigner(admin, second)).status!.conditions!.find((c) => c.type === "Ready")).to.include({
      status: "False",
      reason: "DuplicateSignerName",
    });
    const conflicts = [...firstLogs, ...running.logs].filter(
      (line) => /\b409\b|Conflict/.test(line) && line.includes(suffix),
    );
    expect(conflicts).to.deep.equal([]);
    expect(
      await metricValue(`csr_signer_signer_condition{signer="${dupName}",name="${second}",type="Ready"}`),
    ).to.equal("0");
    expect(
      await metricValue(`csr_signer_signer_condition{signer="${dupName}",name="${first}",type="Ready"}`),
    ).to.equal("1");
  });

  it("an Automatic Signer whose controller lacks approve: a CSR Event and Degraded ApprovalWriteFailed name the rule; granted, it approves and issues", async () => {
    const objectName = `failures-auto-${suffix}`;
    await createSigner(admin, objectName, {
      ...signerSpec(autoName, `failures-1-${suffix}`),
      approval: { mode: "Automatic" },
    });
    signerObjects.push(objectName);
    await waitForSignerCondition(admin, objectName, "Ready", "True");
    const name = uniqueName("csr-failures-auto");
    await submitCsr(asServiceAccount(admin, "foo", "web"), {
      name,
      signerName: autoName,
      requestPem: request(),
    });
    const event = await waitForCsrEvent(admin, name, "ApprovalWriteFailed", "Warning");
    expect(event.message).to.contain("HTTP 403").and.to.contain(rule("approve", autoName));
    const degraded = await waitForSignerCondition(
      admin,
      objectName,
      "Degraded",
      "True",
      "ApprovalWriteFailed",
    );
    expect(degraded.status!.conditions!.find((c) => c.type === "Degraded")!.message).to.contain(
      rule("approve", autoName),
    );
    await waitForSignerEvent(admin, objectName, "ApprovalWriteFailed", "Warning");

    grants.push(
      await grantSignerVerbs(admin, {
        subject: serviceAccountSubject(controllerNamespace, "csr-signer"),
        signerNames: [autoName],
        verbs: ["approve"],
      }),
    );
    // Retried with backoff until the grant takes effect.
    expect((await waitForOutcome(admin, name, 60_000)).certificatePem).to.be.a("string");
    await waitForSignerCondition(admin, objectName, "Degraded", "False");
  });
});

describe("ValidatingAdmissionPolicy: one Signer per signerName (manifests/base/signer-name-policy.yaml)", function () {
  this.timeout(90_000);
  const suffix = uniqueName("v").slice(2);
  const signerName = `admission.csr-signer.test/one-${suffix}`;
  const owner = `admission-a-${suffix}`;
  const policyFile = "manifests/base/signer-name-policy.yaml";
  let admin: KubeConfig;

  const spec = (name: string) => ({
    signerName: name,
    certificateAuthority: { secretName: `admission-${suffix}` },
    policy: { requesters: { tenantServiceAccounts: true } },
  });
  /** A server-side dry run of creating Signer `objectName` for `name`: admission runs, nothing is stored. */
  const dryRunCreate = (objectName: string, name: string): string => {
    try {
      return kubectl(
        controlPlane(),
        ["create", "--dry-run=server", "-o", "name", "-f", "-"],
        JSON.stringify({
          apiVersion: "csr-signer.io/v1alpha1",
          kind: "Signer",
          metadata: { name: objectName },
          spec: spec(name),
        }),
      );
    } catch (error) {
      return String((error as { stderr?: string }).stderr ?? error);
    }
  };

  before(async () => {
    admin = controlPlane().kubeConfig();
    await installSignerManifests(controlPlane());
    await createSigner(admin, owner, spec(signerName));
    kubectl(controlPlane(), ["apply", "--server-side", "-f", policyFile]);
  });

  after(async () => {
    kubectl(controlPlane(), ["delete", "--ignore-not-found", "-f", policyFile]);
    // Other suites create duplicates on purpose (the controller's rule): wait until it is gone.
    await waitFor("the policy no longer enforced", async () =>
      dryRunCreate(`admission-probe-${suffix}`, signerName).startsWith("signer.csr-signer.io/")
        ? true
        : undefined,
    );
    await deleteSigner(admin, owner);
  });

  it("refuses a second Signer for a claimed signerName, naming the owner; allows another name and the owner's own updates", async () => {
    const refusal = await waitFor("the policy to refuse a duplicate", async () => {
      const answer = dryRunCreate(`admission-b-${suffix}`, signerName);
      return answer.includes("ValidatingAdmissionPolicy") ? answer : undefined;
    });
    expect(refusal).to.contain("csr-signer.io-unique-signer-name");
    expect(refusal).to.contain(
      `spec.signerName ${signerName} belongs to Signer ${owner}, which claimed it first; one Signer per signer name`,
    );
    // Really refused, not only in a dry run.
    expect(() =>
      kubectl(
        controlPlane(),
        ["create", "-f", "-"],
        JSON.stringify({
          apiVersion: "csr-signer.io/v1alpha1",
          kind: "Signer",
          metadata: { name: `admission-b-${suffix}` },
          spec: spec(signerName),
        }),
      ),
    ).to.throw(/belongs to Signer/);
    expect(dryRunCreate(`admission-c-${suffix}`, `admission.csr-signer.test/other-${suffix}`)).to.contain(
      `signer.csr-signer.io/admission-c-${suffix}`,
    );
    // The owner stays editable (the policy checks CREATE only).
    kubectl(controlPlane(), ["label", "signer", owner, `edited=yes`]);
    expect((await readSigner(admin, owner)).spec.signerName).to.equal(signerName);
  });
});
