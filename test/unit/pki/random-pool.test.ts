import { expect } from "chai";
import { pooledRandomBytes } from "../../../src/pki/random-pool.js";

describe("pooledRandomBytes", () => {
  it("hands out the size asked for, each call its own bytes, across refills of the 4 KiB block", () => {
    const seen = new Set<string>();
    for (let call = 0; call < 600; call++) {
      // 600 x 16 bytes spends the block twice over.
      const bytes = pooledRandomBytes(16);
      expect(bytes.length).to.equal(16);
      seen.add(Buffer.from(bytes).toString("hex"));
    }
    expect(seen.size, "128-bit values never repeat").to.equal(600);
  });

  it("returns copies: writing into one result changes no other", () => {
    const first = pooledRandomBytes(16);
    const before = Buffer.from(first).toString("hex");
    const second = pooledRandomBytes(16);
    second.fill(0);
    expect(Buffer.from(first).toString("hex")).to.equal(before);
    expect(first.buffer).to.not.equal(second.buffer);
  });

  it("serves requests larger than the block directly", () => {
    const bytes = pooledRandomBytes(5000);
    expect(bytes.length).to.equal(5000);
    expect(bytes.some((byte) => byte !== 0)).to.equal(true);
  });
});
