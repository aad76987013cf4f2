import { expect } from "chai";
import { KubeConfig, type V1CertificateSigningRequest } from "@kubernetes/client-node";
import { cpuComponents, type CpuComponent } from "../../../bench/soak/cpu.js";
import { restoreControlPlane, unrecoveredFault, type FaultRecord } from "../../../bench/soak/faults.js";
import { buildLedger } from "../../../bench/soak/ledger.js";
import type { SentRequest } from "../../../bench/soak/load.js";
import { BundlePoller, LeasePoller } from "../../../bench/soak/observers.js";
import { formatReport } from "../../../bench/soak/report.js";

const startedAt = Date.parse("2026-12-02T06:24:00Z");
const sent: SentRequest = {
  name: "soak-1",
  kind: "istiod",
  tenant: "a",
  createdAt: startedAt - 1_000,
  approved: true,
  approvalAttempts: 1,
};
const pendingCsr: V1CertificateSigningRequest = {
  metadata: { name: "soak-1" },
  spec: { request: "", signerName: "soak.csr-signer.test/a", usages: [] },
  status: { conditions: [{ type: "Approved", status: "True", reason: "", message: "" }] },
};
const cores = Object.fromEntries(cpuComponents.map((component) => [component, 0])) as Record<
  CpuComponent,
  number
>;
const facts = {
  seed: 7,
  seconds: 360,
  rate: 50,
  revision: "0123456789ab",
  runtime: "bundle",
  startedAt: new Date(startedAt).toISOString(),
  loadAverage: "9.0 9.0 9.0",
};

function report(faults: FaultRecord[], remaining: V1CertificateSigningRequest[] | undefined) {
  const admin = new KubeConfig(); // never used to connect: the pollers are not started
  const ledger = buildLedger({
    sent: new Map([[sent.name, sent]]),
    outcomes: new Map(),
    remaining,
    faults,
    signatures: [],
    lease: new LeasePoller(admin, "csr-signer"),
    bundles: new BundlePoller(admin),
    incarnations: [],
    counters: { notCreated: 0, skipped: 0 },
  });
  return { ledger, ...formatReport(ledger, faults, cores, facts) };
}

describe("soak table: a fault the harness never saw undone", () => {
  const notReady = new Error(
    "kube-apiserver failed to restart: Error: timed out after 90000 ms waiting for kube-apiserver /readyz\n(its log)",
  );

  it("is recorded as not recovered (a restarted kube-apiserver not ready within 90 s) and the table is still printed, MISSED", () => {
    const fault = unrecoveredFault(
      "apiserver-restart",
      startedAt,
      notReady,
      "the control plane was back 20.0 s later after another restart",
      startedAt + 110_000,
    );
    expect(fault).to.deep.include({
      kind: "apiserver-restart",
      startedAt,
      endedAt: startedAt + 110_000,
      notRecovered:
        "kube-apiserver failed to restart: Error: timed out after 90000 ms waiting for kube-apiserver /readyz",
    });
    const { ledger, table, allMet } = report([fault], [pendingCsr]);
    expect(ledger.notRecovered).to.deep.equal([{ kind: "apiserver-restart", why: fault.notRecovered }]);
    expect(table).to.contain(
      `| faults recovered from (the harness saw the system whole again) | 0 of 1; not: apiserver-restart (${fault.notRecovered}) | all | **MISSED** |`,
    );
    expect(table).to.contain(
      "- apiserver-restart: did not recover: kube-apiserver failed to restart: Error: timed out after 90000 ms waiting for kube-apiserver /readyz; the control plane was back 20.0 s later after another restart (2026-12-02T06:24:00.000Z, 110.0 s)",
    );
    // The final list was read: the request is pending with its reason, not lost.
    expect(table).to.contain("| lost | 0 | 0 | met |");
    expect(ledger.pendingAtEnd.map((pending) => pending.name)).to.deep.equal(["soak-1"]);
    expect(allMet).to.equal(false);
  });

  it("without the final list (the API server still down): lost is unknown, MISSED, and the unanswered are pending for that reason", () => {
    const fault = unrecoveredFault(
      "apiserver-restart",
      startedAt,
      notReady,
      "another restart failed too (…)",
    );
    const { ledger, table, allMet } = report([fault], undefined);
    expect(ledger.finalListRead).to.equal(false);
    expect(ledger.lost).to.deep.equal([]);
    expect(ledger.pendingAtEnd).to.deep.equal([
      { name: "soak-1", reason: "unknown: the final list of CSRs failed" },
    ]);
    expect(table).to.contain("| lost | unknown (the final list of CSRs failed) | 0 | **MISSED** |");
    expect(allMet).to.equal(false);
  });

  it("recovered faults keep the row met", () => {
    const fault: FaultRecord = {
      kind: "signer-edit",
      startedAt,
      endedAt: startedAt + 1_000,
      detail: "soak-a: spec.issuance.maxDuration 168h",
    };
    expect(report([fault], []).table).to.contain(
      "| faults recovered from (the harness saw the system whole again) | 1 of 1 | all | met |",
    );
  });

  it("restores the control plane once more after a control-plane fault only, and says how that went", async () => {
    const calls: string[] = [];
    const controlPlane = (failing?: string) => ({
      restartApiServer: () => {
        calls.push("kube-apiserver");
        return failing ? Promise.reject(new Error(`${failing}\nlog`)) : Promise.resolve();
      },
      restartEtcd: () => {
        calls.push("etcd");
        return Promise.resolve();
      },
    });
    expect(await restoreControlPlane("apiserver-restart", controlPlane())).to.match(
      /^the control plane was back \d+\.\d s later after another restart$/,
    );
    expect(calls).to.deep.equal(["kube-apiserver"]);
    calls.length = 0;
    await restoreControlPlane("etcd-restart", controlPlane());
    expect(calls).to.deep.equal(["etcd", "kube-apiserver"]);
    calls.length = 0;
    expect(await restoreControlPlane("leader-sigkill", controlPlane())).to.equal(
      "the control plane left as it was (a controller fault)",
    );
    expect(calls).to.deep.equal([]);
    expect(await restoreControlPlane("apiserver-sigstop", controlPlane("not ready again"))).to.equal(
      "another restart failed too (not ready again)",
    );
  });
});
