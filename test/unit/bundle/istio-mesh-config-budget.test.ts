import { expect } from "chai";
import type { RecordedRoot } from "../../../src/api/signer.js";
import {
  caCertificatesBlock,
  caCertificatesYaml,
  replaceCaCertificates,
} from "../../../src/bundle/istio-mesh-config.js";
import {
  configMapDataBytes,
  fitMeshConfig,
  type MeshConfigReplace,
} from "../../../src/bundle/istio-mesh-config-budget.js";
import { testRecordedRoots } from "../../support/pki.js";

const spec = (signerName: string) => ({
  signerName,
  certificateAuthority: { secretName: "x" },
  policy: { requesters: { users: ["u"] } },
});

describe("the Istio mesh ConfigMap's size budget (one tenant's roots must not break the mesh config of all)", () => {
  const now = new Date();
  let signers: { name: string; spec: unknown; roots: RecordedRoot[] }[];
  const block = () => caCertificatesBlock(signers, now, { keepRootsOfInvalidSpecs: true });

  before(async () => {
    signers = [
      { name: "big", spec: spec("example.com/big"), roots: await testRecordedRoots("big", 4) },
      { name: "mid", spec: spec("example.com/mid"), roots: await testRecordedRoots("mid", 2) },
      { name: "small", spec: spec("example.com/small"), roots: await testRecordedRoots("small", 1) },
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
    const fitted = fitMeshConfig({ data: { mesh: "trustDomain: cluster.local\n" } }, block(), 100_000);
    expect(fitted.ok && fitted.leftOut).to.deep.equal([]);
    expect(fitted.ok && fitted.text.match(/^- pem: \|$/gm)).to.have.length(3);
  });

  it("leaves out the largest entries until it fits, keeps the rest, and says by how much each would have passed", () => {
    const sizes = new Map(block().entries.map((entry) => [entry.signer, entry.bytes]));
    const padding = "x".repeat(10_000);
    const configMap = { data: { mesh: "trustDomain: cluster.local\n", padding } };
    // Room for everything but the big Signer's entry.
    const budget = configMapDataBytes(configMap) + 200 + sizes.get("mid")! + sizes.get("small")!;
    const fitted = fitMeshConfig(configMap, block(), budget);
    if (!fitted.ok) throw new Error(fitted.problem);
    expect(fitted.leftOut.map((entry) => [entry.signer, entry.roots])).to.deep.equal([["big", 4]]);
    expect(fitted.leftOut[0]!.wouldBeBytes).to.be.above(budget);
    expect(configMapDataBytes({ data: { ...configMap.data, mesh: fitted.text } })).to.be.at.most(budget);
    expect(fitted.text).to.contain("  - example.com/mid\n");
    expect(fitted.text).to.contain("  - example.com/small\n");
    expect(fitted.text).not.to.contain("  - example.com/big\n");
    // Tighter still: the next largest goes too, the smallest stays.
    const tighter = fitMeshConfig(configMap, block(), budget - sizes.get("mid")!);
    expect(tighter.ok && tighter.leftOut.map((entry) => entry.signer)).to.deep.equal(["big", "mid"]);
  });

  it("removes a left-out Signer's old entry instead of keeping it (its signerName stays ours)", () => {
    // "_" is not base64: the marker cannot turn up inside a generated root's PEM (as "OLD" could).
    const old = "caCertificates:\n- pem: |\n    OLD_ENTRY\n  certSigners:\n  - example.com/big\n";
    const sizes = new Map(block().entries.map((entry) => [entry.signer, entry.bytes]));
    const budget = old.length + 200 + sizes.get("mid")! + sizes.get("small")!;
    const fitted = fitMeshConfig({ data: { mesh: old } }, block(), budget);
    expect(fitted.ok && fitted.text).not.to.contain("OLD_ENTRY");
  });

  it("refuses to write when the ConfigMap passes the budget without any entry of ours", () => {
    const fitted = fitMeshConfig({ data: { mesh: "", padding: "x".repeat(5000) } }, block(), 4000);
    expect(fitted.ok).to.equal(false);
    expect(!fitted.ok && fitted.problem).to.match(
      /holds \d+ bytes without any Signer's roots, over the 4000-byte budget/,
    );
  });
});

describe("the Istio mesh ConfigMap's size budget: its cost (it runs on the event loop after Signer events)", () => {
  const now = new Date();
  let roots: RecordedRoot[];

  before(async () => {
    roots = await testRecordedRoots("shared", 2);
  });

  /** `count` Signers of equal entries, and the budget that fits `fitting` of them. */
  function fleet(count: number, fitting: number) {
    const signers = Array.from({ length: count }, (_, i) => ({
      name: `s${String(i).padStart(4, "0")}`,
      spec: spec(`example.com/s${String(i).padStart(4, "0")}`),
      roots,
    }));
    const configMap = { data: { mesh: "trustDomain: cluster.local\n" } };
    const entryBytes = caCertificatesBlock(signers.slice(0, 1), now).entries[0]!.bytes;
    const empty = replaceCaCertificates(configMap.data.mesh, "caCertificates:\n", new Set());
    const base = configMapDataBytes({ data: { mesh: empty.ok ? empty.text : "" } });
    return { signers, configMap, budget: base + fitting * entryBytes };
  }

  for (const [count, fitting] of [
    [20, 15],
    [120, 15],
  ] as const)
    it(`edits the mesh text twice when it leaves out ${count - fitting} of ${count} Signers`, () => {
      const { signers, configMap, budget } = fleet(count, fitting);
      let replaces = 0;
      const block = caCertificatesBlock(signers, now, { keepRootsOfInvalidSpecs: true });
      const replace: MeshConfigReplace = (...args) => {
        replaces++;
        return replaceCaCertificates(...args);
      };
      const fitted = fitMeshConfig(configMap, block, budget, replace);
      if (!fitted.ok) throw new Error(fitted.problem);
      expect(fitted.leftOut).to.have.length(count - fitting);
      expect(configMapDataBytes({ data: { mesh: fitted.text } })).to.be.at.most(budget);
      expect(fitted.text.match(/^- pem: \|$/gm)).to.have.length(fitting);
      expect(replaces).to.equal(2);
    });

  it("edits the mesh text once when everything fits", () => {
    const { signers, configMap, budget } = fleet(30, 30);
    let replaces = 0;
    const fitted = fitMeshConfig(configMap, caCertificatesBlock(signers, now), budget, (...args) => {
      replaces++;
      return replaceCaCertificates(...args);
    });
    expect(fitted.ok && fitted.leftOut).to.deep.equal([]);
    expect(replaces).to.equal(1);
  });
});

describe("the Istio mesh ConfigMap's size budget: entries of equal size (a tenant padding its roots to another's)", () => {
  const now = new Date();
  let roots: RecordedRoot[];
  // The same roots (they are public) under signerNames of the same length: entries of equal size.
  const signer = (name: string, createdAt?: string) => ({
    name,
    spec: spec(`example.com/${name}`),
    roots,
    ...(createdAt ? { createdAt } : {}),
  });

  before(async () => {
    roots = await testRecordedRoots("victim", 2);
  });

  function fitOne(signers: ReturnType<typeof signer>[], mesh: string) {
    const block = caCertificatesBlock(signers, now);
    expect(block.entries[0]!.bytes).to.equal(block.entries[1]!.bytes);
    const empty = replaceCaCertificates(mesh, "caCertificates:\n", block.signerNames);
    const budget =
      configMapDataBytes({ data: { mesh: empty.ok ? empty.text : "" } }) + block.entries[0]!.bytes;
    const fitted = fitMeshConfig({ data: { mesh } }, block, budget);
    if (!fitted.ok) throw new Error(fitted.problem);
    return fitted.leftOut.map((entry) => entry.signer);
  }

  it("keeps the entry already in the ConfigMap as it is, whatever the newcomer's name", () => {
    const victim = signer("zeta", "2026-01-01T00:00:00Z");
    const attacker = signer("alfa", "2025-01-01T00:00:00Z");
    const mesh = `trustDomain: cluster.local\n${caCertificatesYaml(caCertificatesBlock([victim], now).entries)}`;
    expect(fitOne([attacker, victim], mesh)).to.deep.equal(["alfa"]);
  });

  it("of two entries new to the ConfigMap, keeps the older Signer's", () => {
    const victim = signer("zeta", "2025-01-01T00:00:00Z");
    const attacker = signer("alfa", "2026-01-01T00:00:00Z");
    expect(fitOne([attacker, victim], "trustDomain: cluster.local\n")).to.deep.equal(["alfa"]);
  });

  it("of two new entries of unknown age, leaves out the later name", () => {
    expect(fitOne([signer("alfa"), signer("zeta")], "trustDomain: cluster.local\n")).to.deep.equal(["zeta"]);
  });
});
