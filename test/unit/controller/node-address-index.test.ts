import { expect } from "chai";
import { NodeAddressIndex } from "../../../src/controller/node-address-index.js";

const node = (name: string, ...addresses: [string, string][]) => ({
  metadata: { name },
  status: { addresses: addresses.map(([type, address]) => ({ type, address })) },
});

describe("NodeAddressIndex", () => {
  it("finds every Node by its name and each address, IPs in canonical form and names in lower case", () => {
    const index = new NodeAddressIndex();
    index.upsert(
      node("n1", ["Hostname", "N1.Example.com"], ["InternalIP", "10.0.0.11"], ["InternalIP", "FD00::0011"]),
    );
    index.upsert(node("n2", ["InternalIP", "10.0.0.12"], ["ExternalIP", "::ffff:10.0.0.11"]));
    expect(index.nodesWithAddress("n1")).to.deep.equal(["n1"]);
    expect(index.nodesWithAddress("n1.example.com")).to.deep.equal(["n1"]);
    expect(index.nodesWithAddress("fd00::11")).to.deep.equal(["n1"]);
    expect(index.nodesWithAddress("10.0.0.11")).to.deep.equal(["n1", "n2"]);
    expect(index.nodesWithAddress("n2")).to.deep.equal(["n2"]);
    expect(index.nodesWithAddress("10.0.0.99")).to.deep.equal([]);
  });

  it("an update replaces a Node's entries and a delete removes them, leaving the others", () => {
    const index = new NodeAddressIndex();
    index.upsert(node("n1", ["InternalIP", "10.0.0.12"]));
    index.upsert(node("n2", ["InternalIP", "10.0.0.12"]));
    index.upsert(node("n1", ["InternalIP", "10.0.0.11"]));
    expect(index.nodesWithAddress("10.0.0.12")).to.deep.equal(["n2"]);
    expect(index.nodesWithAddress("10.0.0.11")).to.deep.equal(["n1"]);
    index.delete(node("n2"));
    expect(index.nodesWithAddress("10.0.0.12")).to.deep.equal([]);
    expect(index.nodesWithAddress("n2")).to.deep.equal([]);
    expect(index.nodesWithAddress("n1")).to.deep.equal(["n1"]);
  });
});
