import { expect } from "chai";
import type { RecordedRoot } from "../../../src/api/signer.js";
import { caCertificatesBlock } from "../../../src/bundle/istio-mesh-config.js";
import { configMapDataBytes, fitMeshConfig } from "../../../src/bundle/istio-mesh-config-budget.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

const spec = (signerName: string) => ({
  signerName,
  certificateAuthority: { secretName: "x" },
  policy: { requesters: { users: ["u"] } },
});

async function recordedRoots(name: string, count: number): Promise<RecordedRoot[]> {
  const roots: RecordedRoot[] = [];
  for (let i = 0; i < count; i++) {
    const root = (await makeTestCertificateAuthority({ name: `${name}-${i}` })).root.certificate;
    roots.push({
      fingerprintSha256: root.fingerprintSha256,
      subject: root.subject,
      notAfter: root.notAfter.toISOString(),
      pem: root.pem,
    });
  }
  return roots;
}

describe("the Istio mesh ConfigMap's size budget (one tenant's roots must not break the mesh config of all)", () => {
  const now = new Date();
  let signers: { name: string; spec: unknown; roots: RecordedRoot[] }[];
  const build = (leaveOut: ReadonlySet<string>) =>
    caCertificatesBlock(signers, now, { keepRootsOfInvalidSpecs: true, leaveOut });

  before(async () => {
    signers = [
      { name: "big", spec: spec("example.com/big"), roots: await recordedRoots("big", 4) },
      { name: "mid", spec: spec("example.com/mid"), roots: await recordedRoots("mid", 2) },
      { name: "small", spec: spec("example.com/small"), roots: await recordedRoots("small", 1) },
    ];
  });

  it("counts data values and binaryData's decoded bytes, as the API server's 1 MiB limit does", () => {
    expect(
      configMapDataBytes({
        data: { mesh: "é".repeat(10), other: "abc" },
        binaryData: { blob: Buffer.alloc(30).toString("base64") },
      }),
    ).to.equal(20 + 3 + 30);
  });

  it("writes every entry while the ConfigMap fits", () => {
    const fitted = fitMeshConfig({ data: { mesh: "trustDomain: cluster.local\n" } }, build, 100_000);
    expect(fitted.ok && fitted.leftOut).to.deep.equal([]);
    expect(fitted.ok && fitted.text.match(/^- pem: \|$/gm)).to.have.length(3);
  });

  it("leaves out the largest entries until it fits, keeps the rest, and says by how much each would have passed", () => {
    const sizes = new Map(build(new Set()).entries.map((entry) => [entry.signer, entry.bytes]));
    const padding = "x".repeat(10_000);
    const configMap = { data: { mesh: "trustDomain: cluster.local\n", padding } };
    // Room for everything but the big Signer's entry.
    const budget = configMapDataBytes(configMap) + 200 + sizes.get("mid")! + sizes.get("small")!;
    const fitted = fitMeshConfig(configMap, build, budget);
    if (!fitted.ok) throw new Error(fitted.problem);
    expect(fitted.leftOut.map((entry) => [entry.signer, entry.roots])).to.deep.equal([["big", 4]]);
    expect(fitted.leftOut[0]!.wouldBeBytes).to.be.above(budget);
    expect(configMapDataBytes({ data: { ...configMap.data, mesh: fitted.text } })).to.be.at.most(budget);
    expect(fitted.text).to.contain("  - example.com/mid\n");
    expect(fitted.text).to.contain("  - example.com/small\n");
    expect(fitted.text).not.to.contain("  - example.com/big\n");
    // Tighter still: the next largest goes too, the smallest stays.
    const tighter = fitMeshConfig(configMap, build, budget - sizes.get("mid")!);
    expect(tighter.ok && tighter.leftOut.map((entry) => entry.signer)).to.deep.equal(["big", "mid"]);
  });

  it("removes a left-out Signer's old entry instead of keeping it (its signerName stays ours)", () => {
    const old = "caCertificates:\n- pem: |\n    OLD\n  certSigners:\n  - example.com/big\n";
    const sizes = new Map(build(new Set()).entries.map((entry) => [entry.signer, entry.bytes]));
    const budget = old.length + 200 + sizes.get("mid")! + sizes.get("small")!;
    const fitted = fitMeshConfig({ data: { mesh: old } }, build, budget);
    expect(fitted.ok && fitted.text).not.to.contain("OLD");
  });

  it("refuses to write when the ConfigMap passes the budget without any entry of ours", () => {
    const fitted = fitMeshConfig({ data: { mesh: "", padding: "x".repeat(5000) } }, build, 4000);
    expect(fitted.ok).to.equal(false);
    expect(!fitted.ok && fitted.problem).to.match(
      /holds \d+ bytes without any Signer's roots, over the 4000-byte budget/,
    );
  });
});
