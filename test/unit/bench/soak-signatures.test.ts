import { expect } from "chai";
import { joinSignatureLines, writtenSignatures } from "../../../bench/soak/signatures.js";

/** A signing log line as src/controller/csr-signing.ts writes it. */
const line = (
  msg: "writing certificate" | "signed certificate",
  uid: string,
  serial: string,
  written?: string,
): Record<string, unknown> => ({
  time: "2026-12-02T05:00:01.000Z",
  level: "info",
  msg,
  csr: `csr-${uid}`,
  uid,
  signer: "soak.csr-signer.test/a",
  serial,
  resourceVersion: "7",
  writeStartedAt: "2026-12-02T05:00:00.000Z",
  ...(written === undefined ? {} : { written }),
});

describe("soak ledger: the signing log's intent and outcome lines", () => {
  it("joins each intent with its outcome; an intent alone (the replica died with the write in flight) is unknown", () => {
    const signatures = joinSignatureLines("replica-a-1", [
      line("writing certificate", "u1", "0A1B"),
      line("signed certificate", "u1", "0A1B", "ok"),
      line("writing certificate", "u2", "0C"),
      { msg: "issued certificate", csr: "csr-u1", serial: "0A1B" },
    ]);
    expect(
      signatures.map((s) => [s.identity, s.uid, s.serial, s.written, s.loggedAt !== undefined]),
    ).to.deep.equal([
      ["replica-a-1", "u1", "a1b", "ok", true],
      ["replica-a-1", "u2", "c", "unknown", false],
    ]);
  });

  it("counts a write whose outcome is unknown (no outcome line, or error) as written exactly when the API server holds its serial", () => {
    const signatures = joinSignatureLines("replica-a-1", [
      line("writing certificate", "killed-held", "01"),
      line("writing certificate", "killed-not-held", "02"),
      line("writing certificate", "timeout-held", "03"),
      line("signed certificate", "timeout-held", "03", "error"),
      line("writing certificate", "conflict", "04"),
      line("signed certificate", "conflict", "04", "conflict"),
    ]);
    const held = new Map([
      ["killed-held", "1"],
      ["killed-not-held", "99"], // another replica's certificate
      ["timeout-held", "3"],
      ["conflict", "4"], // a refused write cannot have published it: left for "unlogged" to show
    ]);
    const result = writtenSignatures(signatures, held);
    expect(result.written.map((s) => s.uid)).to.deep.equal(["killed-held", "timeout-held"]);
    expect(result.unknownHeld).to.equal(2);
    expect(result.byOutcome).to.deep.equal({ unknown: 2, error: 1, conflict: 1 });
    expect(result.doubleSigned).to.deep.equal([]);
  });

  it("finds a CSR with two serials written: two ok outcomes, or an ok beside an unknown one the API server holds", () => {
    const signatures = [
      ...joinSignatureLines("replica-a-1", [
        line("writing certificate", "twice", "0a"),
        line("signed certificate", "twice", "0a", "ok"),
        line("writing certificate", "unknown-and-ok", "0c"),
      ]),
      ...joinSignatureLines("replica-b-1", [
        line("writing certificate", "twice", "0b"),
        line("signed certificate", "twice", "0b", "ok"),
        line("writing certificate", "unknown-and-ok", "0d"),
        line("signed certificate", "unknown-and-ok", "0d", "ok"),
      ]),
    ];
    const result = writtenSignatures(signatures, new Map([["unknown-and-ok", "c"]]));
    expect(result.doubleSigned).to.deep.equal(["twice (a, b)", "unknown-and-ok (c, d)"]);
  });
});
