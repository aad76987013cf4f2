import { expect } from "chai";
import { readFileSync } from "node:fs";
import {
  allReasons,
  certificateAuthorityProblems,
  certificateRequestRejectionReasons,
  signerConditionReasons,
  signingRefusalReasons,
  kubeletServingDenialReasons,
} from "../../../src/api/reasons.js";

describe("condition and Event reasons", () => {
  it("are CamelCase, as Kubernetes reasons are", () => {
    for (const reason of allReasons) expect(reason).to.match(/^[A-Z][A-Za-z0-9]*$/, reason);
  });

  it("list no reason twice within a group", () => {
    for (const group of [
      certificateAuthorityProblems,
      certificateRequestRejectionReasons,
      signerConditionReasons,
      signingRefusalReasons,
      kubeletServingDenialReasons,
    ])
      expect(new Set(group).size).to.equal(group.length);
  });

  it("are spelled once in src/api/reasons.ts", () => {
    const source = readFileSync(new URL("../../../src/api/reasons.ts", import.meta.url), "utf8");
    const literals = [...source.matchAll(/"([A-Z][A-Za-z0-9]*)"/g)].map(([, literal]) => literal!);
    const repeated = literals.filter((literal, index) => literals.indexOf(literal) !== index);
    expect(repeated).to.deep.equal([]);
  });
});
