/**
 * What went wrong lately, per Signer, apart from its own object and CA: the last trust bundle
 * publication's problems, the last transient signing or approval write failure (until one
 * succeeds), and being left out of the Istio mesh config. These are the facts behind a Signer's
 * Ready and Degraded conditions beside what its build found (signer-status.ts).
 */
import type { SignerProblem } from "./signer-problem.js";
import type { SignerConditionFacts } from "./signer-status.js";

export class SignerTroubles {
  /** Problems of the last trust bundle publication, by Signer (Degraded while there are any). */
  private readonly publicationProblems = new Map<string, string>();
  /** The last transient failure while signing (an API write refused, the CA failed), until a success. */
  private readonly signingTrouble = new Map<string, SignerProblem>();
  /** The last refused approval write of an Automatic Signer (Degraded), until one succeeds. */
  private readonly approvalTrouble = new Map<string, SignerProblem>();
  /** Signers whose roots the last Istio mesh-config pass left out (size budget), Degraded until they fit. */
  private readonly meshConfigProblems = new Map<string, SignerProblem>();

  /** `exists` answers whether a Signer object is configured now (a report about a deleted one is dropped). */
  constructor(private readonly exists: (objectName: string) => boolean) {}

  /**
   * A CSR of this Signer could not be finished for a reason that is not the request's fault (the API
   * server refused the status write, the CA failed to sign). Ready reports it until signingSucceeded.
   */
  reportSigningTrouble(objectName: string, trouble: SignerProblem): void {
    this.signingTrouble.set(objectName, trouble);
  }

  signingSucceeded(objectName: string): void {
    this.signingTrouble.delete(objectName);
  }

  /** The API server refused an approval this Signer's Automatic approval decided (Degraded until one succeeds). */
  reportApprovalTrouble(objectName: string, trouble: SignerProblem): void {
    this.approvalTrouble.set(objectName, trouble);
  }

  approvalSucceeded(objectName: string): void {
    this.approvalTrouble.delete(objectName);
  }

  /** What went wrong in the last publication of this Signer's trust bundle (none: all is well). */
  reportPublication(objectName: string, problems: readonly string[]): void {
    if (problems.length > 0) this.publicationProblems.set(objectName, problems.join("; "));
    else this.publicationProblems.delete(objectName);
  }

  /** The last publication's problems, joined; undefined when it went well. */
  publicationProblem(objectName: string): string | undefined {
    return this.publicationProblems.get(objectName);
  }

  /**
   * The Signers the last Istio mesh-config pass left out, with why; returns the Signers whose
   * report changed (their status is to be written again).
   */
  reportMeshConfigLeftOut(leftOut: ReadonlyMap<string, string>): string[] {
    const changed: string[] = [];
    for (const [objectName, problem] of this.meshConfigProblems)
      if (!leftOut.has(objectName)) {
        this.meshConfigProblems.delete(objectName);
        changed.push(objectName);
      } else if (leftOut.get(objectName) !== problem.message) changed.push(objectName);
    for (const [objectName, message] of leftOut) {
      if (!this.exists(objectName)) continue; // deleted since the pass read it
      if (!this.meshConfigProblems.has(objectName)) changed.push(objectName);
      this.meshConfigProblems.set(objectName, { reason: "IstioMeshConfigTooLarge", message });
    }
    return changed;
  }

  /** The condition facts of one Signer. */
  facts(objectName: string): SignerConditionFacts {
    return {
      publicationProblem: this.publicationProblems.get(objectName),
      signingTrouble: this.signingTrouble.get(objectName),
      approvalTrouble: this.approvalTrouble.get(objectName),
      meshConfigProblem: this.meshConfigProblems.get(objectName),
    };
  }

  /** Forgets every Signer not in `live` (deleted Signers). */
  retainOnly(live: ReadonlySet<string>): void {
    for (const state of [
      this.signingTrouble,
      this.approvalTrouble,
      this.publicationProblems,
      this.meshConfigProblems,
    ])
      for (const name of state.keys()) if (!live.has(name)) state.delete(name);
  }
}
