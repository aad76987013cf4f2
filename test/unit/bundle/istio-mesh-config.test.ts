import { expect } from "chai";
import { caCertificatesBlock, replaceCaCertificates } from "../../../src/bundle/istio-mesh-config.js";
import { SignerSpecError } from "../../../src/policy/signer-spec.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";
import type { RecordedRoot } from "../../../src/api/signer.js";

const block =
  "caCertificates:\n- pem: |\n    -----BEGIN CERTIFICATE-----\n    QUJD\n    -----END CERTIFICATE-----\n  certSigners:\n  - example.com/foo\n";

function edited(mesh: string): string {
  const edit = replaceCaCertificates(mesh, block);
  if (!edit.ok) throw new Error(edit.problem);
  return edit.text;
}

describe("meshConfig caCertificates: replacing only that field", () => {
  it("replaces a block list (items at column 0 or indented, literal pems, comments inside) and keeps every other byte", () => {
    const before =
      "# managed by helm\ntrustDomain: cluster.local   # keep\ndefaultConfig:\n  discoveryAddress: istiod.istio-system.svc:15012\n";
    const after = "\n# trailing comment of the next key\nenablePrometheusMerge: true\n";
    for (const old of [
      "caCertificates:\n- pem: |\n    OLD\n  certSigners:\n  - example.com/foo\n",
      "caCertificates:\n  - pem: |\n      OLD\n\n      MORE\n    certSigners: [example.com/foo]\n  # inside\n",
      "caCertificates: []\n",
      "caCertificates: [{pem: OLD, certSigners: [a]}]  # one line\n",
    ]) {
      expect(edited(`${before}${old}${after}`)).to.equal(`${before}${block}${after}`);
    }
  });

  it("appends the block when the field is absent, with a newline first when the text lacks one", () => {
    expect(edited("trustDomain: cluster.local\n")).to.equal(`trustDomain: cluster.local\n${block}`);
    expect(edited("trustDomain: cluster.local")).to.equal(`trustDomain: cluster.local\n${block}`);
    expect(edited("")).to.equal(block);
  });

  it("reports unchanged when the field already holds the block, so nothing is written", () => {
    const mesh = `trustDomain: cluster.local\n${block}defaultConfig: {}\n`;
    const edit = replaceCaCertificates(mesh, block);
    expect(edit).to.deep.equal({ ok: true, text: mesh, changed: false });
  });

  it("stops at the next top-level key, a document marker, and never takes a nested caCertificates", () => {
    const mesh = `defaultConfig:\n  caCertificates: nested\ncaCertificates:\n- pem: OLD\n---\nother: 1\n`;
    expect(edited(mesh)).to.equal(`defaultConfig:\n  caCertificates: nested\n${block}---\nother: 1\n`);
  });

  it("leaves alone and reports what it cannot delimit safely: a multi-line flow list, the key twice, an alias", () => {
    for (const [mesh, problem] of [
      ["caCertificates: [\n  {pem: OLD}]\n", /not a block list/],
      ["caCertificates: []\ncaCertificates: []\n", /more than once/],
      ["caCertificates: *roots\n", /not a block list/],
      ["caCertificates:\n- &entry\n  pem: OLD\n", /anchor or alias/],
    ] as const) {
      const edit = replaceCaCertificates(mesh, block);
      expect(edit.ok, mesh).to.equal(false);
      if (!edit.ok) expect(edit.problem).to.match(problem);
    }
  });
});

describe("meshConfig caCertificates: the entries", () => {
  const spec = (signerName: string) => ({
    signerName,
    certificateAuthority: { secretName: "x" },
    policy: { requesters: { users: ["u"] } },
  });
  async function recordedRoot(name: string): Promise<RecordedRoot> {
    const ca = await makeTestCertificateAuthority({ name });
    const root = ca.root.certificate;
    return {
      fingerprintSha256: root.fingerprintSha256,
      subject: root.subject,
      notAfter: root.notAfter.toISOString(),
      pem: root.pem,
    };
  }

  it("one entry per signer with all its roots in one pem, Signers without roots skipped", async () => {
    const [a, b] = [await recordedRoot("a"), await recordedRoot("b")];
    const result = caCertificatesBlock(
      [
        { name: "foo", spec: spec("example.com/foo"), roots: [a, b] },
        { name: "new", spec: spec("example.com/new"), roots: [] },
      ],
      new Date(),
    );
    expect(result.skipped).to.deep.equal(["new"]);
    expect(result.yaml.match(/^- pem: \|$/gm)).to.have.length(1);
    expect(result.yaml).to.contain("  certSigners:\n  - example.com/foo\n");
    expect(result.yaml.match(/BEGIN CERTIFICATE/g)).to.have.length(2);
  });

  it("throws on a spec that does not parse, unless asked to keep that signer's recorded roots", async () => {
    const root = await recordedRoot("c");
    const broken = { name: "foo", spec: { signerName: "example.com/foo", policy: 7 }, roots: [root] };
    expect(() => caCertificatesBlock([broken], new Date())).to.throw(SignerSpecError);
    const kept = caCertificatesBlock([broken], new Date(), { keepRootsOfInvalidSpecs: true });
    expect(kept.yaml).to.contain("  - example.com/foo\n");
    expect(kept.yaml).to.contain(root.pem.split("\n")[1]!);
  });
});
