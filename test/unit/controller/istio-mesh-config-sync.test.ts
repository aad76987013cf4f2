import { expect } from "chai";
import type { SignerObject } from "../../../src/api/signer.js";
import { IstioMeshConfigSync } from "../../../src/controller/istio-mesh-config-sync.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import type { KubeApi } from "../../../src/kube/api-client.js";
import type { Logger } from "../../../src/logger.js";
import { testRecordedRoots } from "../../support/pki.js";

/** A KubeApi that records every call and answers none: the cases below must not reach the API. */
function untouchedApi(calls: string[]): KubeApi {
  return new Proxy({} as KubeApi, {
    get: (_target, method) => () => {
      calls.push(String(method));
      return Promise.reject(new Error("not expected"));
    },
  });
}

function recordingLogger(lines: string[]): Logger {
  const record = (message: string, fields?: object) =>
    lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
  return { debug: record, info: record, warn: record, error: record, flush: () => undefined };
}

const corruptSigner: SignerObject = {
  metadata: { name: "foo", creationTimestamp: "2026-01-01T00:00:00Z" },
  spec: {
    signerName: "example.com/foo",
    certificateAuthority: { secretName: "x" },
    policy: { requesters: { users: ["u"] } },
  } as SignerObject["spec"],
  status: {
    trustBundle: {
      roots: [{ fingerprintSha256: "00", subject: "CN=x", notAfter: "2999-01-01T00:00:00Z", pem: "garbage" }],
    },
  } as SignerObject["status"],
};

describe("IstioMeshConfigSync", () => {
  const target = [{ namespace: "istio-system", name: "istio" }];

  it("a Signer whose recorded roots are corrupt fails the pass without a write or an exception", async () => {
    const calls: string[] = [];
    const lines: string[] = [];
    const metrics = new ControllerMetrics();
    const sync = new IstioMeshConfigSync(
      target,
      untouchedApi(calls),
      () => [corruptSigner],
      () => new Date(),
      recordingLogger(lines),
      metrics,
      () => true,
    );
    expect(await sync.sync()).to.equal(false);
    expect(calls).to.deep.equal([]);
    expect(lines.join("\n")).to.contain("Signer foo records a trust-bundle root that is not a certificate");
    const text = await metrics.registry.metrics();
    expect(text).to.match(/csr_signer_istio_mesh_config_syncs_total\{[^}]*outcome="failed"[^}]*\} 1/);
    await sync.stop();
  });

  it("a replica that is not the leader starts no pass, retries included", async () => {
    const calls: string[] = [];
    let signersRead = 0;
    const sync = new IstioMeshConfigSync(
      target,
      untouchedApi(calls),
      () => {
        signersRead++;
        return [];
      },
      () => new Date(),
      recordingLogger([]),
      new ControllerMetrics(),
      () => false,
    );
    sync.request();
    await sync.stop();
    expect([signersRead, calls]).to.deep.equal([0, []]);
  });
});

describe("IstioMeshConfigSync: csr_signer_istio_mesh_config_left_out (Degraded shows one reason, this says it apart)", () => {
  /** A KubeApi holding one mesh ConfigMap in memory: getIfExists reads it, replace writes it. */
  function configMapApi(): KubeApi {
    let configMap = {
      metadata: { name: "istio", namespace: "istio-system" },
      data: { mesh: "trustDomain: cluster.local\n" },
    };
    return {
      getIfExists: async () => structuredClone(configMap),
      replace: async (_path: string, body: typeof configMap) => (configMap = structuredClone(body)),
    } as unknown as KubeApi;
  }
  async function signer(name: string, rootCount: number): Promise<SignerObject> {
    const roots = await testRecordedRoots(name, rootCount);
    return {
      metadata: { name, creationTimestamp: "2026-01-01T00:00:00Z" },
      spec: {
        signerName: `example.com/${name}`,
        certificateAuthority: { secretName: "x" },
        policy: { requesters: { users: ["u"] } },
      } as SignerObject["spec"],
      status: { trustBundle: { roots } } as SignerObject["status"],
    };
  }
  const leftOutLines = async (metrics: ControllerMetrics) =>
    (await metrics.registry.metrics())
      .split("\n")
      .filter((line) => line.startsWith("csr_signer_istio_mesh_config_left_out{"));

  it("is 1 for the signer left out over the budget, and removed once it fits", async () => {
    const metrics = new ControllerMetrics();
    const big = await signer("big", 4);
    const small = await signer("small", 1);
    let signers = [big, small];
    const sync = new IstioMeshConfigSync(
      [{ namespace: "istio-system", name: "istio" }],
      configMapApi(),
      () => signers,
      () => new Date(),
      recordingLogger([]),
      metrics,
      () => true,
      undefined,
      3000,
    );
    expect(await sync.sync()).to.equal(true);
    expect(await leftOutLines(metrics)).to.deep.equal([
      'csr_signer_istio_mesh_config_left_out{configmap="istio-system/istio",signer="example.com/big"} 1',
    ]);
    // Its retired roots left: one root fits beside the small Signer's.
    signers = [
      {
        ...big,
        status: { trustBundle: { roots: big.status!.trustBundle!.roots!.slice(0, 1) } },
      } as SignerObject,
      small,
    ];
    expect(await sync.sync()).to.equal(true);
    expect(await leftOutLines(metrics)).to.deep.equal([]);
    await sync.stop();
  });
});
