import { expect } from "chai";
import { kubernetesUsages, type KubernetesUsage } from "../../../src/api/usages.js";
import { certificateKeyUsages } from "../../../src/pki/key-usages.js";

describe("certificateKeyUsages (usage names to keyUsage bits and EKU OIDs)", () => {
  it("maps Istio's usages to digitalSignature and keyEncipherment, serverAuth then clientAuth", () => {
    expect(
      certificateKeyUsages([
        "client auth",
        "digital signature",
        "server auth",
        "key encipherment",
        "client auth",
      ]),
    ).to.deep.equal({
      keyUsageBits: [0, 2],
      extendedKeyUsageOids: ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
    });
  });

  it("gives the same bits and OIDs whatever the order and repeats of the request, sorted and once each", () => {
    let seed = 7;
    const random = (below: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % below;
    };
    for (let round = 0; round < 500; round++) {
      const usages: KubernetesUsage[] = Array.from(
        { length: random(12) },
        () => kubernetesUsages[random(kubernetesUsages.length)]!,
      );
      const shuffled = [...usages, ...usages].sort(() => random(3) - 1);
      const { keyUsageBits, extendedKeyUsageOids } = certificateKeyUsages(usages);
      expect(certificateKeyUsages(shuffled)).to.deep.equal({ keyUsageBits, extendedKeyUsageOids });
      expect(keyUsageBits).to.deep.equal([...new Set(keyUsageBits)].sort((a, b) => a - b));
      expect(extendedKeyUsageOids).to.deep.equal([...new Set(extendedKeyUsageOids)]);
      expect(keyUsageBits.every((bit) => bit >= 0 && bit <= 8)).to.equal(true);
    }
  });

  it("every usage alone: the bit or OID it names and nothing else", () => {
    const all = certificateKeyUsages(kubernetesUsages);
    for (const usage of kubernetesUsages) {
      const alone = certificateKeyUsages([usage]);
      expect(alone.keyUsageBits.length + alone.extendedKeyUsageOids.length, usage).to.be.at.most(1);
      for (const bit of alone.keyUsageBits) expect(all.keyUsageBits).to.include(bit);
      for (const oid of alone.extendedKeyUsageOids) expect(all.extendedKeyUsageOids).to.include(oid);
    }
    expect(all.keyUsageBits).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });
});
