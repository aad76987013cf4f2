/**
 * `make run`: a local control plane (etcd + kube-apiserver), the Signer CRD and RBAC from
 * manifests/, an offline root with one intermediate per tenant (foo, bar, istio-system) in
 * Istio's cacerts layout, the example Signers, and the real `csr-signer controller` process
 * running as its service account. Then CSRs as istiod and as a workload, the issued chains, and
 * one refused cross-tenant request. Keeps running until Ctrl-C.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import { loadCertificateAuthority } from "../src/pki/certificate-authority.js";
import { parseCertificate, type ParsedCertificate } from "../src/pki/certificate.js";
import {
  cacertsFiles,
  createIntermediateCertificateAuthority,
  createRootCertificateAuthority,
} from "../src/pki/offline-ca.js";
import { decodeCertificatesPem } from "../src/pki/pem.js";
import { startControlPlane } from "../test/support/control-plane.js";
import {
  createCaSecret,
  installSignerManifests,
  kubectl,
  setApproval,
  submitCsr,
  waitForOutcome,
  waitForSignerCondition,
} from "../test/support/controller.js";
import { waitFor } from "../test/support/wait.js";
import {
  asServiceAccount,
  allowToRequestCertificates,
  grantSignerVerbs,
  serviceAccountSubject,
} from "../test/support/identities.js";
import { buildTestCertificateRequest, testKey } from "../test/support/pki.js";

const say = (text: string): void => console.log(`\n==> ${text}`);
const tenants = ["istio-system", "foo", "bar"];
// Outside the control plane's folder, which stop() removes: the log and the PEMs outlive the demo.
const outputDir = mkdtempSync(join(tmpdir(), "csr-signer-run-"));
const logPath = join(outputDir, "csr-signer.log");

/** A port nobody listens on now (the OS picks it), so a busy 18080 never stops the demo. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The controller's own last words from its JSON log: the error lines, else the last lines. */
function controllerError(): string {
  const lines = readFileSync(logPath, "utf8").trimEnd().split("\n");
  const errors = lines.filter((line) => /"level":"error"|Error|error:/i.test(line));
  return (errors.length > 0 ? errors : lines).slice(-5).join("\n    ");
}

const controlPlane = await startControlPlane();
let controllerProcess: ReturnType<typeof spawn> | undefined;
const shutdown = async (): Promise<void> => {
  controllerProcess?.kill("SIGTERM");
  await controlPlane.stop();
  process.exit(0);
};
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());

try {
  const admin = controlPlane.kubeConfig();
  say(`control plane up in ${(controlPlane.startupMs / 1000).toFixed(1)} s at ${controlPlane.server}`);
  await installSignerManifests(controlPlane);
  const core = admin.makeApiClient(CoreV1Api);
  for (const namespace of tenants)
    await core.createNamespace({ body: { metadata: { name: namespace } } }).catch(() => undefined);

  say("offline root CA, then one intermediate per tenant (csr-signer ca root / ca intermediate)");
  const root = await createRootCertificateAuthority({
    subject: [
      { type: "O", value: "Demo Corp" },
      { type: "CN", value: "Demo offline root" },
    ],
    lifetimeSeconds: 10 * 365 * 86400,
    keyType: "ecdsa-p384",
  });
  const rootPath = join(outputDir, "root-cert.pem");
  writeFileSync(rootPath, root.certificate.pem);
  for (const tenant of tenants) {
    const intermediate = await createIntermediateCertificateAuthority(root, {
      subject: [
        { type: "O", value: "Demo Corp" },
        { type: "CN", value: `${tenant} intermediate` },
      ],
      lifetimeSeconds: 365 * 86400,
      keyType: "ecdsa-p256",
    });
    const files = cacertsFiles(intermediate, [root.certificate], [root.certificate]);
    loadCertificateAuthority(files, new Date());
    await createCaSecret(admin, `${tenant}-cacerts`, files);
    console.log(
      `    Secret csr-signer/${tenant}-cacerts: ${intermediate.certificate.subject} <- ${root.certificate.subject}`,
    );
  }

  say("Signers from manifests/examples/istio-multitenant/signers.yaml");
  console.log(
    kubectl(controlPlane, ["apply", "-f", "manifests/examples/istio-multitenant/signers.yaml"]).trimEnd(),
  );

  say(
    "starting `csr-signer controller` as system:serviceaccount:csr-signer:csr-signer (RBAC from manifests/base)",
  );
  const controllerIdentity = await controlPlane.clientCertificateKubeConfig(
    "system:serviceaccount:csr-signer:csr-signer",
    ["system:serviceaccounts", "system:serviceaccounts:csr-signer", "system:authenticated"],
  );
  const controllerKubeconfig = join(controlPlane.dir, "csr-signer.kubeconfig");
  writeFileSync(controllerKubeconfig, controllerIdentity.exportConfig(), { mode: 0o600 });
  const [metricsPort, probePort] = [await freePort(), await freePort()];
  controllerProcess = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "src/cli/main.ts",
      "controller",
      "--kubeconfig",
      controllerKubeconfig,
      "--namespace",
      "csr-signer",
      "--metrics-address",
      `127.0.0.1:${metricsPort}`,
      // Plain HTTP, so the curl below needs no token.
      "--metrics-secure",
      "false",
      "--probe-address",
      `127.0.0.1:${probePort}`,
      "--leader-elect",
      "true",
    ],
    { stdio: ["ignore", "inherit", "pipe"] },
  );
  const logStream = createWriteStream(logPath);
  controllerProcess.stderr!.pipe(logStream);
  const exited = new Promise<never>((_, reject) =>
    controllerProcess!.once("close", (code, signal) => {
      // Read the log once it is flushed, so the error shown is the controller's last word.
      const report = (): void =>
        reject(new Error(`the controller exited (${signal ?? `code ${code}`}):\n    ${controllerError()}`));
      if (logStream.closed) report();
      else logStream.once("close", report);
    }),
  );
  exited.catch(() => undefined); // read by the race below; unhandled once the demo runs
  for (const tenant of tenants)
    await Promise.race([waitForSignerCondition(admin, tenant, "Ready", "True", undefined, 60_000), exited]);
  console.log(kubectl(controlPlane, ["get", "signers"]).trimEnd());

  say("istiod (registration authority) requests workload certificates for foo and bar, then approves them");
  await grantSignerVerbs(admin, {
    subject: serviceAccountSubject("istio-system", "istiod"),
    signerNames: ["example.com/*"],
    verbs: ["approve"],
  });
  const istiod = asServiceAccount(admin, "istio-system", "istiod");
  const requests = [
    {
      name: "csr-workload-foo-web",
      signerName: "example.com/foo",
      uri: "spiffe://cluster.local/ns/foo/sa/web",
    },
    {
      name: "csr-workload-bar-api",
      signerName: "example.com/bar",
      uri: "spiffe://cluster.local/ns/bar/sa/api",
    },
    {
      name: "csr-workload-cross-tenant",
      signerName: "example.com/foo",
      uri: "spiffe://cluster.local/ns/bar/sa/api",
    },
  ];
  for (const request of requests) {
    const requestPem = buildTestCertificateRequest({
      key: testKey("ecdsa-p256", true),
      subject: [{ type: "O", value: "" }],
      subjectAltNames: { uri: [request.uri] },
    });
    await submitCsr(istiod, {
      name: request.name,
      signerName: request.signerName,
      requestPem,
      expirationSeconds: 86400,
    });
    await setApproval(istiod, request.name, "Approved");
  }
  say("istiod's own serving certificate (RSA, 10 years requested, clamped by the Signer)");
  const istiodRequest = buildTestCertificateRequest({
    key: testKey("rsa-2048", true),
    subjectAltNames: { dns: ["istiod.istio-system.svc", "istio-pilot.istio-system.svc"] },
  });
  await submitCsr(istiod, {
    name: "csr-istiod-serving",
    signerName: "example.com/istio-system",
    requestPem: istiodRequest,
    usages: ["digital signature", "key encipherment", "server auth"],
    expirationSeconds: 10 * 365 * 86400,
  });
  await setApproval(istiod, "csr-istiod-serving", "Approved");

  for (const [tenant, serviceAccount] of [
    ["foo", "web"],
    ["bar", "api"],
  ] as const) {
    say(`a workload of ${tenant} asks for itself (service account ${tenant}/${serviceAccount})`);
    await allowToRequestCertificates(admin, serviceAccountSubject(tenant, serviceAccount));
    await submitCsr(asServiceAccount(admin, tenant, serviceAccount), {
      name: `csr-self-${tenant}-${serviceAccount}`,
      signerName: `example.com/${tenant}`,
      requestPem: buildTestCertificateRequest({
        key: testKey("ecdsa-p256", true),
        subjectAltNames: {
          uri: [`spiffe://cluster.local/ns/${tenant}/sa/${serviceAccount}`],
          dns: [`${serviceAccount}.${tenant}.svc`],
        },
      }),
    });
    await setApproval(istiod, `csr-self-${tenant}-${serviceAccount}`, "Approved");
  }

  for (const name of [
    "csr-workload-foo-web",
    "csr-workload-bar-api",
    "csr-istiod-serving",
    "csr-self-foo-web",
    "csr-self-bar-api",
    "csr-workload-cross-tenant",
  ]) {
    const outcome = await waitForOutcome(admin, name, 60_000);
    if (outcome.failed) {
      say(`${name}: REFUSED ${outcome.failed.reason}\n    ${outcome.failed.message}`);
      continue;
    }
    const pemPath = join(outputDir, `${name}.pem`);
    writeFileSync(pemPath, outcome.certificatePem!);
    const chain = decodeCertificatesPem(outcome.certificatePem!, name).map(parseCertificate);
    say(`${name}: issued, chain in ${pemPath}`);
    for (const certificate of chain) {
      const sans = certificate.x509.subjectAltName ?? "";
      console.log(
        `    subject="${certificate.subject}" issuer="${certificate.issuer}" notAfter=${certificate.notAfter.toISOString()}${sans ? ` SAN: ${sans}` : ""}`,
      );
    }
    console.log(`    verify against the offline root: ${verifyChain(chain, root.certificate)}`);
  }
  await waitFor("Signer counts", async () =>
    kubectl(controlPlane, ["get", "signers", "-o", "jsonpath={.items[*].status.issuedCount}"])
      .trim()
      .split(" ")
      .some((n) => Number(n) > 0)
      ? true
      : undefined,
  );

  say("kubectl get csr,signers");
  console.log(kubectl(controlPlane, ["get", "csr,signers"]).trimEnd());
  const kubectlPath = process.env.KUBE_BIN_DIR ? join(process.env.KUBE_BIN_DIR, "kubectl") : "kubectl";
  say(`running. Try:
    export KUBECONFIG=${controlPlane.kubeconfigPath}
    ${kubectlPath} get csr,signers
    ${kubectlPath} describe csr csr-workload-cross-tenant
    openssl verify -CAfile ${rootPath} ...   (the offline root every tenant chains to)
    curl -s http://127.0.0.1:${metricsPort}/metrics | grep csr_signer
  controller log: ${logPath}
  issued chains (PEM): ${outputDir}/csr-*.pem
  Ctrl-C stops the controller and the control plane.`);
  if (process.env.CSR_SIGNER_DEMO_EXIT === "1") await shutdown(); // used by the test of `make run`
} catch (error) {
  console.error(`make run failed: ${(error as Error).message}`);
  console.error(`controller log kept at ${logPath}`);
  controllerProcess?.kill("SIGTERM");
  await controlPlane.stop();
  process.exit(1);
}

/** Each certificate issued by the next, the last by the root, all valid now: "OK" or what fails. */
function verifyChain(chain: ParsedCertificate[], root: ParsedCertificate): string {
  const path = [...chain, root];
  const now = new Date();
  for (const [index, certificate] of chain.entries()) {
    const issuer = path[index + 1]!;
    if (!certificate.x509.checkIssued(issuer.x509) || !certificate.x509.verify(issuer.x509.publicKey))
      return `FAILED: "${certificate.subject}" is not signed by "${issuer.subject}"`;
    if (certificate.notBefore > now || certificate.notAfter < now)
      return `FAILED: "${certificate.subject}" is not valid now`;
  }
  return "OK";
}
