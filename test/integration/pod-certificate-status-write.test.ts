/**
 * The PodCertificateRequest status write against the real API server, as the CSR one
 * (kube-api.test.ts): it asks stillLeading after the client rate limiter's wait, so a replica that
 * lost its lease meanwhile (frozen, starved) drops the write ("not sent") instead of deciding a
 * request another replica now owns. The request is made as a kubelet makes it (pod-certificates.test.ts).
 */
import { expect } from "chai";
import {
  CertificatesV1beta1Api,
  CoreV1Api,
  type V1beta1PodCertificateRequest,
} from "@kubernetes/client-node";
import { KubeApi } from "../../src/kube/api-client.js";
import type { ConnectionReusingKubeConfig } from "../../src/kube/client.js";
import { kubernetesPodCertificateApi } from "../../src/kube/pod-certificate-api-binding.js";
import { kubernetesTime } from "../../src/kube/time.js";
import { asNode, uniqueName } from "../support/identities.js";
import { createPodOnNode, podKeyFields, podTestKey } from "../support/pod-certificates.js";
import { settledNow } from "../support/wait.js";
import { controlPlane } from "./setup.js";

/** A Node, a ServiceAccount and a Pod on it, and the Pod's PodCertificateRequest made as its kubelet. */
async function requestAsKubelet(signerName: string): Promise<{ namespace: string; name: string }> {
  const admin = controlPlane().kubeConfig();
  const core = admin.makeApiClient(CoreV1Api);
  const namespace = uniqueName("pcr-write");
  const nodeName = `${namespace}-node`;
  const node = await core.createNode({ body: { metadata: { name: nodeName } } });
  const pod = await createPodOnNode(admin, namespace, "web-0", nodeName);
  const created = await asNode(admin, nodeName)
    .makeApiClient(CertificatesV1beta1Api)
    .createNamespacedPodCertificateRequest({
      namespace,
      body: {
        metadata: { generateName: "web-0-" },
        spec: {
          signerName,
          podName: "web-0",
          podUID: pod.uid,
          serviceAccountName: "web",
          serviceAccountUID: pod.serviceAccountUID,
          nodeName,
          nodeUID: node.metadata!.uid!,
          maxExpirationSeconds: 86_400,
          ...podKeyFields(podTestKey("ECDSAP256"), pod.uid, "stub"),
        } as V1beta1PodCertificateRequest["spec"],
      },
    });
  return { namespace, name: created.metadata!.name! };
}

describe("PodCertificateRequest status writes on the real API server", function () {
  this.timeout(30_000);

  it("a status write whose lease was lost while it waited for the rate limiter is not sent", async function () {
    const admin = controlPlane().kubeConfig();
    const { namespace, name } = await requestAsKubelet(`pcr-write.csr-signer.test/${uniqueName("s")}`);
    const read = (): Promise<V1beta1PodCertificateRequest> =>
      admin.makeApiClient(CertificatesV1beta1Api).readNamespacedPodCertificateRequest({ namespace, name });
    const { resourceVersion } = (await read()).metadata!;
    const kubeConfig = controlPlane().kubeConfig() as ConnectionReusingKubeConfig;
    kubeConfig.setRateLimit(2, 1); // a burst of one, then one request per 500 ms
    const api = KubeApi.for(kubeConfig);
    await api.get(`/api/v1/namespaces/${namespace}`); // spends the burst: the write below waits in the limiter
    let leading = true;
    const requests = kubernetesPodCertificateApi(api, () => leading);
    const denied = {
      conditions: [
        {
          type: "Denied",
          status: "True",
          reason: "LeaseTest",
          message: "written only while leading",
          lastTransitionTime: kubernetesTime(new Date()),
        },
      ],
    };
    const write = requests.patchStatus(namespace, name, resourceVersion!, denied);
    expect(await settledNow(write)).to.equal(false);
    leading = false; // the renew deadline passed while the write waited
    expect(await write).to.equal("not sent");
    expect((await read()).status?.conditions ?? []).to.deep.equal([]);
    // Leading again, with the same (still current) copy: the write goes out.
    leading = true;
    expect(await requests.patchStatus(namespace, name, resourceVersion!, denied)).to.equal("ok");
    expect(((await read()).status?.conditions ?? []).map((condition) => condition.reason)).to.deep.equal([
      "LeaseTest",
    ]);
  });
});
