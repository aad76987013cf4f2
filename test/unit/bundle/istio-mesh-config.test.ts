import { expect } from "chai";
import {
  caCertificatesBlock,
  InvalidRecordedRootsError,
  replaceCaCertificates,
} from "../../../src/bundle/istio-mesh-config.js";
import { resolveSignerNameClaims } from "../../../src/policy/signer-name-claims.js";
import { SignerSpecError } from "../../../src/policy/signer-spec.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";
import type { RecordedRoot } from "../../../src/api/signer.js";

const block =
  "caCertificates:\n- pem: |\n    -----BEGIN CERTIFICATE-----\n    QUJD\n    -----END CERTIFICATE-----\n  certSigners:\n  - example.com/foo\n";

/** The signer names whose entries the edits own (replace); entries of any other name are kept. */
const owned = new Set(["example.com/foo", "a"]);

function edited(mesh: string): string {
  const edit = replaceCaCertificates(mesh, block, owned);
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
    const edit = replaceCaCertificates(mesh, block, owned);
    expect(edit).to.deep.equal({ ok: true, text: mesh, changed: false });
  });

  it("stops at the next top-level key and never takes a nested caCertificates", () => {
    const mesh = `defaultConfig:\n  caCertificates: nested\ncaCertificates:\n- pem: OLD\n  certSigners: [a]\nother: 1\n`;
    expect(edited(mesh)).to.equal(`defaultConfig:\n  caCertificates: nested\n${block}other: 1\n`);
  });

  it("keeps the entries of signer names that are not ours (other CAs, SPIFFE bundle URLs) after ours", () => {
    const mesh =
      "trustDomain: cluster.local\ncaCertificates:\n- pem: OLD\n  certSigners: [example.com/foo]\n" +
      "- spiffeBundleUrl: https://other.example/bundle\n  trustDomains: [other.example]\n" +
      "- pem: THEIRS\n  certSigners:\n  - clusterissuers.cert-manager.io/other\n";
    expect(edited(mesh)).to.equal(
      "trustDomain: cluster.local\n" +
        block +
        "- spiffeBundleUrl: https://other.example/bundle\n  trustDomains:\n    - other.example\n" +
        "- pem: THEIRS\n  certSigners:\n    - clusterissuers.cert-manager.io/other\n",
    );
  });

  it("refuses a mesh config whose line edit would change more than caCertificates", () => {
    for (const [mesh, problem] of [
      [
        '{"trustDomain": "cluster.local", "caCertificates": []}\n',
        /more than caCertificates|not valid YAML|would not parse/,
      ],
      [
        "{trustDomain: cluster.local,\n caCertificates: []}\n",
        /more than caCertificates|not valid YAML|would not parse/,
      ],
      ['"caCertificates": []\ntrustDomain: x\n', /not valid YAML|more than caCertificates|would not parse/],
      [
        "  trustDomain: cluster.local\n  caCertificates: []\n",
        /not valid YAML|more than caCertificates|would not parse/,
      ],
      ["trustDomain: x\n---\nother: 1\n", /more than one YAML document/],
      ["trustDomain: x\n...\n", /not valid YAML|more than|would not parse/],
      ["- a\n- b\n", /not a YAML mapping/],
      ["caCertificates: {pem: x}\n", /not a list|not a block list/],
    ] as const) {
      const edit = replaceCaCertificates(mesh, block, owned);
      expect(edit.ok, mesh).to.equal(false);
      if (!edit.ok) expect(edit.problem, mesh).to.match(problem);
    }
  });

  it("leaves alone and reports what it cannot delimit safely: a multi-line flow list, the key twice, an alias", () => {
    for (const [mesh, problem] of [
      ["caCertificates: [\n  {pem: OLD}]\n", /not a block list/],
      ["caCertificates: []\ncaCertificates: []\n", /more than once|repeats a key/],
      ["caCertificates: *roots\n", /not a block list|not valid YAML/],
      ["caCertificates:\n- &entry\n  pem: OLD\n", /anchor or alias/],
    ] as const) {
      const edit = replaceCaCertificates(mesh, block, owned);
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

  it("of two Signers naming one signerName, only the older one's roots go in (istiod keeps the last entry)", async () => {
    const [old, newer] = [await recordedRoot("old"), await recordedRoot("newer")];
    const owner = {
      name: "zz-foo",
      spec: spec("example.com/foo"),
      roots: [old],
      createdAt: "2026-01-01T00:00:00Z",
    };
    const intruder = {
      name: "aa-foo",
      spec: spec("example.com/foo"),
      roots: [newer],
      createdAt: "2026-06-01T00:00:00Z",
    };
    for (const order of [
      [owner, intruder],
      [intruder, owner],
    ]) {
      const result = caCertificatesBlock(order, new Date());
      expect(result.duplicates).to.deep.equal(["aa-foo"]);
      expect(result.yaml.match(/^- pem: \|$/gm)).to.have.length(1);
      expect(result.yaml).to.contain(old.pem.split("\n")[1]!);
      expect(result.yaml).not.to.contain(newer.pem.split("\n")[1]!);
      expect([...result.signerNames]).to.deep.equal(["example.com/foo"]);
    }
  });

  it("settles a signerName claimed by a Signer without creationTimestamp as the controller does (resolveSignerNameClaims: it counts as the newest)", async () => {
    const [dated, undated] = [await recordedRoot("dated"), await recordedRoot("undated")];
    const withTime = {
      name: "zz-foo",
      spec: spec("example.com/foo"),
      roots: [dated],
      createdAt: "2026-01-01T00:00:00Z",
    };
    const withoutTime = { name: "aa-foo", spec: spec("example.com/foo"), roots: [undated] };
    const controllerOwner = resolveSignerNameClaims(
      new Map([
        [
          "example.com/foo",
          [
            { objectName: withTime.name, creationTimestamp: withTime.createdAt },
            { objectName: withoutTime.name, creationTimestamp: undefined },
          ],
        ],
      ]),
    ).owners.get("example.com/foo");
    expect(controllerOwner).to.equal("zz-foo");
    for (const order of [
      [withTime, withoutTime],
      [withoutTime, withTime],
    ]) {
      const result = caCertificatesBlock(order, new Date());
      expect(result.duplicates).to.deep.equal([withoutTime.name]);
      expect(result.yaml).to.contain(dated.pem.split("\n")[1]!);
      expect(result.yaml).not.to.contain(undated.pem.split("\n")[1]!);
    }
  });

  it("leaves out the entries it is asked to, keeping their signerName owned, and measures every entry", async () => {
    const [a, b, c] = [await recordedRoot("a"), await recordedRoot("b"), await recordedRoot("c")];
    const signers = [
      { name: "foo", spec: spec("example.com/foo"), roots: [a, b] },
      { name: "bar", spec: spec("example.com/bar"), roots: [c] },
    ];
    const all = caCertificatesBlock(signers, new Date());
    const withoutFoo = caCertificatesBlock(signers, new Date(), { leaveOut: new Set(["foo"]) });
    expect(withoutFoo.yaml).not.to.contain(a.pem.split("\n")[1]!);
    expect(withoutFoo.yaml).to.contain(c.pem.split("\n")[1]!);
    expect([...withoutFoo.signerNames].sort()).to.deep.equal(["example.com/bar", "example.com/foo"]);
    expect(withoutFoo.entries).to.deep.equal(all.entries);
    expect(all.entries.map((entry) => [entry.signer, entry.roots])).to.deep.equal([
      ["foo", 2],
      ["bar", 1],
    ]);
    const fooBytes = all.entries.find((entry) => entry.signer === "foo")!.bytes;
    expect(Buffer.byteLength(all.yaml) - Buffer.byteLength(withoutFoo.yaml)).to.equal(fooBytes);
  });

  it("names the Signer whose recorded roots are not certificates, instead of failing somewhere inside", () => {
    const corrupt = {
      fingerprintSha256: "00",
      subject: "CN=x",
      notAfter: "2999-01-01T00:00:00Z",
      pem: "not a certificate",
    };
    expect(() =>
      caCertificatesBlock([{ name: "foo", spec: spec("example.com/foo"), roots: [corrupt] }], new Date(), {
        keepRootsOfInvalidSpecs: true,
      }),
    )
      .to.throw(InvalidRecordedRootsError)
      .with.property("signer", "foo");
  });
});
