import { expect } from "chai";
import { canonicalJson } from "../../../src/kube/canonical-json.js";

describe("canonicalJson", () => {
  it("gives one text for objects that differ only in key order, at every depth", () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: "s" } })).to.equal(
      canonicalJson({ a: { c: "s", d: [1, { x: 1, y: 2 }] }, b: 1 }),
    );
    expect(canonicalJson({ b: 1, a: 2 })).to.equal('{"a":2,"b":1}');
  });
  it("keeps array order and leaves undefined members out, as JSON does", () => {
    expect(canonicalJson([2, 1])).to.not.equal(canonicalJson([1, 2]));
    expect(canonicalJson({ a: undefined, b: null })).to.equal('{"b":null}');
  });
});
