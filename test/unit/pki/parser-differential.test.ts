import { expect } from "chai";
import fc from "fast-check";
import {
  CertificateRequestError,
  parseCertificateRequest,
  type CertificateRequest,
} from "../../../src/pki/certificate-request.js";
import { nameAttributeOids } from "../../../src/pki/oids.js";
import { encodePem } from "../../../src/pki/pem.js";
import { ipAddressBytes } from "../../../src/pki/subject-alternative-names.js";
import { handMadeRequests } from "../../support/differential-corpus.js";
import {
  differentialCaseArbitrary,
  requestOf,
  type DifferentialCase,
} from "../../support/differential-requests.js";
import { X509Oracle, type GoView } from "../../support/x509-oracle.js";

// Go's crypto/x509 is what kube-apiserver validates a CSR with and what kube-controller-manager and
// most clients read certificates with: csr-signer must never accept a request Go refuses, nor read a
// subject, SAN, key or extension differently. Longer runs: CSR_SIGNER_DIFFERENTIAL_RUNS=200000
// (and CSR_SIGNER_DIFFERENTIAL_SEED to move off the fixed seed), e.g. `make test-differential`.
const generatedRuns = Number(process.env.CSR_SIGNER_DIFFERENTIAL_RUNS ?? 5000);
const seed = Number(process.env.CSR_SIGNER_DIFFERENTIAL_SEED ?? 20261201);

type CsrSignerView = { accepted: true; request: CertificateRequest } | { accepted: false; refusal: string };

function csrSignerView(der: Uint8Array): CsrSignerView {
  try {
    return { accepted: true, request: parseCertificateRequest(encodePem("CERTIFICATE REQUEST", der)) };
  } catch (error) {
    // Anything but a CertificateRequestError (a crash on bad input) fails the test.
    if (error instanceof CertificateRequestError)
      return { accepted: false, refusal: `${error.reason}: ${error.message}` };
    throw error;
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");

/** What csr-signer read, in the shape the Go helper reports. */
function asGoWouldReport(request: CertificateRequest): Omit<GoView, "parsed" | "signatureValid"> {
  const key = request.publicKeyDescription;
  return {
    subject: request.subject.map((attribute) => [
      { type: nameAttributeOids[attribute.type] ?? attribute.type, value: attribute.value },
    ]),
    dns: [...request.subjectAltNames.dns],
    email: [...request.subjectAltNames.email],
    ip: request.subjectAltNames.ip.map((address) => hex(ipAddressBytes(address))),
    uri: [...request.subjectAltNames.uri],
    publicKey:
      key.algorithm === "RSA"
        ? { algorithm: "RSA", bits: key.bits, exponent: String(key.publicExponent) }
        : { algorithm: "ECDSA", curve: key.curve },
    extensions: request.requestedExtensions.map((e) => ({
      oid: e.oid,
      critical: e.critical,
      value: hex(e.value),
    })),
    basicConstraintsCA: request.requestsCertificateAuthority,
  };
}

/** Every way csr-signer's reading differs from Go's; empty when csr-signer refused (it may refuse more). */
function differences(ours: CsrSignerView, go: GoView): string[] {
  if (!ours.accepted) return [];
  if (!go.parsed)
    return [`csr-signer accepted it, Go's ParseCertificateRequest refused it: ${go.parseError}`];
  if (!go.signatureValid)
    return [`csr-signer accepted it, Go's CheckSignature refused it: ${go.signatureError}`];
  const seen = asGoWouldReport(ours.request);
  const theirs: typeof seen = {
    ...go,
    subject: go.subject.map((rdn) => rdn.map(({ type, value }) => ({ type, value: value as string }))),
    // Where encoding/asn1 cannot read basicConstraints (e.g. a non-minimal pathLen) only the
    // extension bytes, compared above, can be; reading cA:TRUE there just makes policy refuse.
    basicConstraintsCA: go.basicConstraintsCA ?? seen.basicConstraintsCA,
  };
  const out: string[] = [];
  for (const field of Object.keys(seen) as (keyof typeof seen)[]) {
    const [a, b] = [JSON.stringify(seen[field]), JSON.stringify(theirs[field])];
    if (a !== b) out.push(`${field}: csr-signer saw ${a}, Go saw ${b}`);
  }
  return out;
}

function report(der: Uint8Array, ours: CsrSignerView, go: GoView, found: string[]): string {
  return [
    ...found,
    `request DER (hex): ${hex(der)}`,
    `csr-signer: ${ours.accepted ? `accepted, saw ${JSON.stringify(asGoWouldReport(ours.request))}` : ours.refusal}`,
    `Go: ${JSON.stringify(go)}`,
  ].join("\n");
}

describe(`csr-signer accepts nothing Go's crypto/x509 refuses, and sees what Go sees (${generatedRuns.toLocaleString("en-US")} generated CSRs + ${handMadeRequests.length} hand-made)`, function () {
  let oracle: X509Oracle;
  before(function () {
    this.timeout(300_000); // a cold build of the Go helper (standard library only) on a busy machine
    oracle = X509Oracle.start();
  });
  after(() => oracle?.close());

  it(`${handMadeRequests.length} hand-made tricky CSRs`, async () => {
    const found: string[] = [];
    let accepted = 0;
    for (const request of handMadeRequests) {
      const der = request.der();
      const ours = csrSignerView(der);
      const go = await oracle.inspect(der);
      if (ours.accepted) accepted++;
      const differencesFound = differences(ours, go);
      if (differencesFound.length)
        found.push(`${request.name}:\n  ${report(der, ours, go, differencesFound).replaceAll("\n", "\n  ")}`);
    }
    expect(found, found.join("\n\n")).to.deep.equal([]);
    expect(accepted, "the honest hand-made requests are accepted").to.be.greaterThan(5);
  });

  it(`${generatedRuns.toLocaleString("en-US")} generated CSRs: honest requests and DER-level mutations, re-signed (seed ${seed})`, async function () {
    this.timeout(Math.max(60_000, generatedRuns * 20));
    const counts = { accepted: 0, mutatedAccepted: 0, refusedByBoth: 0, refusedByCsrSignerOnly: 0 };
    await fc.assert(
      fc.asyncProperty(differentialCaseArbitrary, async (testCase: DifferentialCase) => {
        const der = requestOf(testCase);
        const ours = csrSignerView(der);
        const go = await oracle.inspect(der);
        const goAccepted = go.parsed && go.signatureValid;
        if (ours.accepted) {
          counts.accepted++;
          if (testCase.infoMutations.length + testCase.outerMutations.length > 0) counts.mutatedAccepted++;
        } else if (goAccepted) counts.refusedByCsrSignerOnly++;
        else counts.refusedByBoth++;
        const found = differences(ours, go);
        if (found.length) throw new Error(report(der, ours, go, found));
      }),
      { seed, numRuns: generatedRuns },
    );
    console.log(`      ${JSON.stringify(counts)}`);
    // The generator must exercise both sides of the property, or the test proves nothing.
    // (At the default seed, once Go and csr-signer agree: 12% accepted, 2% after a mutation, 71% refused by both.)
    expect(counts.accepted, "requests csr-signer accepted").to.be.greaterThan(generatedRuns / 20);
    expect(counts.mutatedAccepted, "mutated requests csr-signer accepted").to.be.greaterThan(
      generatedRuns / 100,
    );
    expect(counts.refusedByBoth, "requests both refused").to.be.greaterThan(generatedRuns / 4);
  });
});
