import { expect } from "chai";
import { labelSelectorMatches } from "../../../src/policy/label-selector.js";
import { parseSignerSpec, SignerSpecError } from "../../../src/policy/signer-spec.js";
import { thrownBy } from "../../support/errors.js";

const minimal = {
  signerName: "example.com/foo",
  certificateAuthority: { secretName: "foo-cacerts" },
  policy: { requesters: { tenantServiceAccounts: true }, tenants: { namespaces: ["foo"] } },
};

describe("parseSignerSpec", () => {
  it("defaults a minimal spec as an operator expects", () => {
    const spec = parseSignerSpec(minimal);
    expect(spec.issuance).to.deep.equal({
      defaultDurationSeconds: 86400,
      maxDurationSeconds: 720 * 3600,
      allowedUsages: ["digital signature", "key encipherment", "server auth", "client auth"],
      keyTypes: { rsaMinimumBits: 2048, rsaMaximumBits: 8192, ecdsaCurves: ["P-256", "P-384"] },
      includeRoot: false,
    });
    expect(spec.policy.maxSubjectAltNames).to.equal(10);
    expect(spec.policy.spiffe).to.equal(undefined);
  });

  it("defaults the trust bundle: ConfigMap <object>-trust-bundle/ca.crt, ClusterTrustBundle on, 10-minute root publication hold, 30-day expiry warning", () => {
    const spec = parseSignerSpec(minimal, "foo");
    expect(spec.trustBundle).to.deep.equal({
      configMap: { name: "foo-trust-bundle", key: "ca.crt" },
      clusterTrustBundle: true,
      extraRootsPem: "",
      overlapSeconds: 720 * 3600, // = maxDuration
      minimumRootPublicationSeconds: 600, // two kubelet ConfigMap refreshes in a row, doubled
      expiryWarningSeconds: 30 * 86400,
    });
  });

  it("takes a shorter minimumRootPublication as asked (a warning in status, no refusal), 0s included", () => {
    for (const [text, seconds] of [
      ["0s", 0],
      ["30s", 30],
      ["1h", 3600],
    ] as const) {
      const spec = parseSignerSpec({ ...minimal, trustBundle: { minimumRootPublication: text } }, "foo");
      expect(spec.trustBundle.minimumRootPublicationSeconds).to.equal(seconds);
    }
  });

  it("never lets a retired root leave before the longest leaf expires: overlap is at least maxDuration", () => {
    const issuance = { defaultDuration: "1h", maxDuration: "168h" };
    const short = parseSignerSpec({ ...minimal, issuance, trustBundle: { overlap: "1h" } }, "foo");
    expect(short.trustBundle.overlapSeconds).to.equal(168 * 3600);
    const long = parseSignerSpec({ ...minimal, issuance, trustBundle: { overlap: "336h" } }, "foo");
    expect(long.trustBundle.overlapSeconds).to.equal(336 * 3600);
  });

  it("takes a configured ConfigMap name and key, and refuses the names Kubernetes and Istio own", () => {
    const spec = parseSignerSpec(
      { ...minimal, trustBundle: { configMap: { name: "mesh-roots", key: "roots.pem" } } },
      "foo",
    );
    expect(spec.trustBundle.configMap).to.deep.equal({ name: "mesh-roots", key: "roots.pem" });
    for (const name of ["kube-root-ca.crt", "istio-ca-root-cert"])
      expect(
        thrownBy(SignerSpecError, () => parseSignerSpec({ ...minimal, trustBundle: { configMap: { name } } }))
          .field,
      ).to.equal("spec.trustBundle.configMap.name");
    expect(
      parseSignerSpec({ ...minimal, trustBundle: { configMap: { enabled: false } } }).trustBundle.configMap,
    ).to.equal(undefined);
  });

  it("accepts signer names Istio setups use", () => {
    expect(
      parseSignerSpec({ ...minimal, signerName: "clusterissuers.cert-manager.io/foo" }).signerName,
    ).to.equal("clusterissuers.cert-manager.io/foo");
  });

  const invalid: [string, unknown, string][] = [
    ["a signer name without a domain", { ...minimal, signerName: "foo" }, "spec.signerName"],
    [
      "a kubernetes.io signer name",
      { ...minimal, signerName: "kubernetes.io/kubelet-serving" },
      "spec.signerName",
    ],
    [
      "both CA sources",
      { ...minimal, certificateAuthority: { secretName: "a", path: "/x" } },
      "spec.certificateAuthority",
    ],
    [
      "a relative CA path",
      { ...minimal, certificateAuthority: { path: "x" } },
      "spec.certificateAuthority.path",
    ],
    [
      "a bad duration",
      { ...minimal, issuance: { defaultDuration: "1 day" } },
      "spec.issuance.defaultDuration",
    ],
    [
      "max below default",
      { ...minimal, issuance: { defaultDuration: "24h", maxDuration: "1h" } },
      "spec.issuance.maxDuration",
    ],
    [
      "cert sign as a usage",
      { ...minimal, issuance: { allowedUsages: ["cert sign"] } },
      "spec.issuance.allowedUsages[0]",
    ],
    [
      "an unknown usage",
      { ...minimal, issuance: { allowedUsages: ["server auth", "everything"] } },
      "spec.issuance.allowedUsages[1]",
    ],
    [
      "a P-521 curve",
      { ...minimal, issuance: { keyTypes: { ecdsaCurves: ["P-521"] } } },
      "spec.issuance.keyTypes.ecdsaCurves[0]",
    ],
    [
      "RSA below 2048",
      { ...minimal, issuance: { keyTypes: { rsaMinimumBits: 1024 } } },
      "spec.issuance.keyTypes.rsaMinimumBits",
    ],
    [
      // The request parser refuses larger keys before verifying them: no Signer may ask for one.
      "RSA above 8192",
      { ...minimal, issuance: { keyTypes: { rsaMaximumBits: 8193 } } },
      "spec.issuance.keyTypes.rsaMaximumBits",
    ],
    [
      "a service account without namespace",
      { ...minimal, policy: { ...minimal.policy, requesters: { serviceAccounts: ["istiod"] } } },
      "spec.policy.requesters.serviceAccounts[0]",
    ],
    ["nobody allowed", { ...minimal, policy: { tenants: {} } }, "spec.policy.requesters"],
    [
      "a bad DNS pattern",
      { ...minimal, policy: { ...minimal.policy, dnsNames: ["foo_bar.{namespace}"] } },
      "spec.policy.dnsNames[0]",
    ],
    [
      "a bad CIDR",
      { ...minimal, policy: { ...minimal.policy, ipAddressRanges: ["10.0.0.0/33"] } },
      "spec.policy.ipAddressRanges[0]",
    ],
    // Regressions found by comparing with the API server's CIDR validation:
    [
      "a CIDR with two prefixes",
      { ...minimal, policy: { ...minimal.policy, ipAddressRanges: ["10.0.0.0/8/9"] } },
      "spec.policy.ipAddressRanges[0]",
    ],
    [
      "a CIDR with a zone ID",
      { ...minimal, policy: { ...minimal.policy, ipAddressRanges: ["fe80::1%eth0/64"] } },
      "spec.policy.ipAddressRanges[0]",
    ],
    [
      "a CIDR prefix with a leading zero",
      { ...minimal, policy: { ...minimal.policy, ipAddressRanges: ["10.0.0.0/08"] } },
      "spec.policy.ipAddressRanges[0]",
    ],
    [
      "a reserved organization",
      { ...minimal, policy: { ...minimal.policy, subject: { organizations: ["system:masters"] } } },
      "spec.policy.subject.organizations[0]",
    ],
    [
      "a bad label selector operator",
      {
        ...minimal,
        policy: {
          ...minimal.policy,
          tenants: { namespaceSelector: { matchExpressions: [{ key: "a", operator: "Like" }] } },
        },
      },
      "spec.policy.tenants.namespaceSelector.matchExpressions[0]",
    ],
  ];
  for (const [name, raw, field] of invalid) {
    it(`refuses ${name}, naming ${field}`, () =>
      expect(thrownBy(SignerSpecError, () => parseSignerSpec(raw)).field).to.equal(field));
  }

  it("reads its durations in Go's grammar (test/unit/api/duration.test.ts), a bad one as a SignerSpecError naming the field", () => {
    const trustBundle = { overlap: "1h30m", minimumRootPublication: "600s" };
    const parsed = parseSignerSpec({
      ...minimal,
      issuance: { defaultDuration: "1h", maxDuration: "1h" },
      trustBundle,
    });
    expect(parsed.trustBundle.overlapSeconds).to.equal(5400);
    expect(parsed.trustBundle.minimumRootPublicationSeconds).to.equal(600);
    expect(() => parseSignerSpec({ ...minimal, trustBundle: { overlap: "" } }))
      .to.throw(SignerSpecError)
      .with.property("field", "spec.trustBundle.overlap");
  });

  it("matches label selectors like the API server", () => {
    const selector = {
      matchLabels: { tenant: "foo" },
      matchExpressions: [{ key: "env", operator: "NotIn" as const, values: ["dev"] }],
    };
    expect(labelSelectorMatches(selector, { tenant: "foo" })).to.equal(true);
    expect(labelSelectorMatches(selector, { tenant: "foo", env: "dev" })).to.equal(false);
    expect(labelSelectorMatches(selector, { tenant: "bar" })).to.equal(false);
    expect(
      labelSelectorMatches({ matchExpressions: [{ key: "t", operator: "Exists" }] }, { t: "" }),
    ).to.equal(true);
  });
});

describe("parseSignerSpec: a CA key in a PKCS#11 token, an encrypted key file", () => {
  const withCa = (certificateAuthority: Record<string, unknown>): Record<string, unknown> => ({
    ...minimal,
    certificateAuthority,
  });
  const pkcs11 = { module: "/usr/lib/softhsm/libsofthsm2.so", tokenLabel: "mesh-ca", keyLabel: "ca" };
  const refusal = (certificateAuthority: Record<string, unknown>): { field: string; message: string } =>
    thrownBy(SignerSpecError, () => parseSignerSpec(withCa(certificateAuthority)));

  it("reads the token, the key, and the PIN from a file or a Secret key; the chain source stays", () => {
    const fromFile = parseSignerSpec(
      withCa({ secretName: "mesh-ca-chain", pkcs11: { ...pkcs11, pinFile: "/vault/secrets/pin" } }),
    );
    expect(fromFile.certificateAuthority).to.deep.equal({
      secretName: "mesh-ca-chain",
      pkcs11: {
        module: "/usr/lib/softhsm/libsofthsm2.so",
        tokenLabel: "mesh-ca",
        keyLabel: "ca",
        pin: { file: "/vault/secrets/pin" },
      },
    });
    const bySlotAndId = parseSignerSpec(
      withCa({
        path: "/etc/ca",
        pkcs11: {
          module: "/opt/hsm/lib.so",
          slot: 0,
          keyId: "01A2",
          pinSecretRef: { name: "hsm-pin", key: "pin" },
        },
      }),
    );
    expect(bySlotAndId.certificateAuthority.pkcs11).to.deep.equal({
      module: "/opt/hsm/lib.so",
      slot: 0,
      keyId: "01a2",
      pin: { secret: { name: "hsm-pin", key: "pin" } },
    });
  });

  it("refuses ambiguous or missing token, key and PIN references, naming the field", () => {
    const pinFile = "/pin";
    const cases: [Record<string, unknown>, string, string][] = [
      [
        { ...pkcs11, slot: 1, pinFile },
        "spec.certificateAuthority.pkcs11",
        "exactly one of tokenLabel or slot",
      ],
      [
        { module: pkcs11.module, keyLabel: "ca", pinFile },
        "spec.certificateAuthority.pkcs11",
        "tokenLabel or slot",
      ],
      [
        { ...pkcs11, keyId: "01", pinFile },
        "spec.certificateAuthority.pkcs11",
        "exactly one of keyLabel or keyId",
      ],
      [{ ...pkcs11 }, "spec.certificateAuthority.pkcs11", "exactly one of pinFile or pinSecretRef"],
      [
        { ...pkcs11, pinFile, pinSecretRef: { name: "pin", key: "pin" } },
        "spec.certificateAuthority.pkcs11",
        "only one of pinFile or pinSecretRef",
      ],
      [
        { ...pkcs11, module: "libsofthsm2.so", pinFile },
        "spec.certificateAuthority.pkcs11.module",
        "absolute path",
      ],
      [
        { ...pkcs11, tokenLabel: "x".repeat(33), pinFile },
        "spec.certificateAuthority.pkcs11.tokenLabel",
        "1 to 32 bytes",
      ],
      [
        { module: pkcs11.module, slot: -1, keyLabel: "ca", pinFile },
        "spec.certificateAuthority.pkcs11.slot",
        "slot ID",
      ],
      [
        { module: pkcs11.module, tokenLabel: "t", keyId: "0g", pinFile },
        "spec.certificateAuthority.pkcs11.keyId",
        "hex",
      ],
      [
        { module: pkcs11.module, tokenLabel: "t", keyId: "012", pinFile },
        "spec.certificateAuthority.pkcs11.keyId",
        "hex",
      ],
      [{ ...pkcs11, pinFile: "pin.txt" }, "spec.certificateAuthority.pkcs11.pinFile", "absolute path"],
      [
        { ...pkcs11, pinSecretRef: { name: "Not_A_Name", key: "pin" } },
        "spec.certificateAuthority.pkcs11.pinSecretRef.name",
        "Secret name",
      ],
      [
        { ...pkcs11, pinSecretRef: { name: "pin", key: "a/b" } },
        "spec.certificateAuthority.pkcs11.pinSecretRef.key",
        "Secret key",
      ],
    ];
    for (const [token, field, message] of cases) {
      const error = refusal({ secretName: "chain", pkcs11: token });
      expect(error.field, JSON.stringify(token)).to.equal(field);
      expect(error.message).to.include(message);
    }
  });

  it("still needs the chain source (secretName or path) with a token key", () => {
    const error = refusal({ pkcs11: { ...pkcs11, pinFile: "/pin" } });
    expect(error.field).to.equal("spec.certificateAuthority");
    expect(error.message).to.include("exactly one of secretName or path");
  });

  it("reads an encrypted key's passphrase from a file or a Secret key, never both, never with pkcs11", () => {
    expect(
      parseSignerSpec(withCa({ secretName: "ca", keyPassphraseFile: "/vault/secrets/passphrase" }))
        .certificateAuthority,
    ).to.deep.equal({ secretName: "ca", keyPassphrase: { file: "/vault/secrets/passphrase" } });
    expect(
      parseSignerSpec(
        withCa({ path: "/ca", keyPassphraseSecretRef: { name: "ca-passphrase", key: "passphrase" } }),
      ).certificateAuthority.keyPassphrase,
    ).to.deep.equal({ secret: { name: "ca-passphrase", key: "passphrase" } });
    const both = refusal({
      secretName: "ca",
      keyPassphraseFile: "/p",
      keyPassphraseSecretRef: { name: "p", key: "p" },
    });
    expect([both.field, both.message]).to.deep.equal([
      "spec.certificateAuthority",
      "spec.certificateAuthority: set only one of keyPassphraseFile or keyPassphraseSecretRef",
    ]);
    const withToken = refusal({
      secretName: "ca",
      keyPassphraseFile: "/p",
      pkcs11: { ...pkcs11, pinFile: "/pin" },
    });
    expect(withToken.field).to.equal("spec.certificateAuthority");
    expect(withToken.message).to.include("with pkcs11 there is none");
    expect(refusal({ secretName: "ca", keyPassphraseFile: "p" }).field).to.equal(
      "spec.certificateAuthority.keyPassphraseFile",
    );
  });
});

describe("parseSignerSpec: certificateAuthority.secretNamespace (the CA Secret in a tenant namespace)", () => {
  const tenantCa = (
    certificateAuthority: Record<string, unknown>,
    namespaces: string[] = ["foo", "foo-batch"],
    namespaceSelector?: Record<string, unknown>,
  ): Record<string, unknown> => ({
    ...minimal,
    certificateAuthority,
    policy: {
      ...minimal.policy,
      tenants: { namespaces, ...(namespaceSelector ? { namespaceSelector } : {}) },
    },
  });
  const refusal = (spec: Record<string, unknown>): { field: string; message: string } =>
    thrownBy(SignerSpecError, () => parseSignerSpec(spec));

  it("is absent by default: every Secret is in the controller's namespace", () => {
    expect(parseSignerSpec(minimal).certificateAuthority).to.deep.equal({ secretName: "foo-cacerts" });
  });

  it("takes the Signer's only tenant namespace, for the CA Secret and the passphrase Secret (a PKCS#11 chain Secret with a PIN file)", () => {
    expect(
      parseSignerSpec(tenantCa({ secretName: "foo-cacerts", secretNamespace: "foo-batch" }, ["foo-batch"]))
        .certificateAuthority,
    ).to.deep.equal({ secretName: "foo-cacerts", secretNamespace: "foo-batch" });
    const token = parseSignerSpec(
      tenantCa(
        {
          secretName: "foo-chain",
          secretNamespace: "foo",
          pkcs11: { module: "/hsm.so", tokenLabel: "t", keyLabel: "k", pinFile: "/vault/secrets/pin" },
        },
        ["foo"],
      ),
    ).certificateAuthority;
    expect(token.secretNamespace).to.equal("foo");
    expect(
      parseSignerSpec(
        tenantCa({ path: "/ca", secretNamespace: "foo", keyPassphraseSecretRef: { name: "p", key: "p" } }, [
          "foo",
        ]),
      ).certificateAuthority.secretNamespace,
    ).to.equal("foo");
  });

  it("refuses it for a Signer serving a second namespace or a selector: that namespace's Secret readers could sign for the others", () => {
    const expected = [
      "spec.certificateAuthority.secretNamespace",
      "spec.certificateAuthority.secretNamespace: must be the Signer's only tenant namespace (spec.policy.tenants.namespaces exactly [\"foo\"], no namespaceSelector): whoever reads Secrets there holds this CA's key and could sign for the other namespaces",
    ];
    const several = refusal(
      tenantCa({ secretName: "foo-cacerts", secretNamespace: "foo" }, ["foo", "foo-batch"]),
    );
    expect([several.field, several.message]).to.deep.equal(expected);
    const selector = refusal(
      tenantCa({ secretName: "foo-cacerts", secretNamespace: "foo" }, ["foo"], {
        matchLabels: { tenant: "foo" },
      }),
    );
    expect([selector.field, selector.message]).to.deep.equal(expected);
  });

  it("refuses pkcs11.pinSecretRef with secretNamespace: a tenant writing wrong PINs would lock the shared token", () => {
    const pin = refusal(
      tenantCa(
        {
          secretName: "foo-chain",
          secretNamespace: "foo",
          pkcs11: {
            module: "/hsm.so",
            tokenLabel: "t",
            keyLabel: "k",
            pinSecretRef: { name: "pin", key: "pin" },
          },
        },
        ["foo"],
      ),
    );
    expect(pin.field).to.equal("spec.certificateAuthority.pkcs11.pinSecretRef");
    expect(pin.message).to.include("cannot be used with secretNamespace");
    // Without secretNamespace the PIN Secret is the controller's namespace's: accepted.
    expect(
      parseSignerSpec({
        ...minimal,
        certificateAuthority: {
          secretName: "foo-chain",
          pkcs11: {
            module: "/hsm.so",
            tokenLabel: "t",
            keyLabel: "k",
            pinSecretRef: { name: "pin", key: "pin" },
          },
        },
      }).certificateAuthority.pkcs11!.pin,
    ).to.deep.equal({ secret: { name: "pin", key: "pin" } });
  });

  it("refuses a namespace that is not one of spec.policy.tenants.namespaces: that tenant would hold another's CA key", () => {
    const other = refusal(tenantCa({ secretName: "foo-cacerts", secretNamespace: "bar" }));
    expect(other.field).to.equal("spec.certificateAuthority.secretNamespace");
    expect(other.message).to.include("must be one of spec.policy.tenants.namespaces");
    // A namespace the selector matches is not enough: whoever labels namespaces could move it.
    const selected = refusal(
      tenantCa({ secretName: "foo-cacerts", secretNamespace: "bar" }, [], { matchLabels: { tenant: "foo" } }),
    );
    expect(selected.field).to.equal("spec.certificateAuthority.secretNamespace");
  });

  it("refuses a malformed namespace, and one set where no Secret is named", () => {
    expect(refusal(tenantCa({ secretName: "foo-cacerts", secretNamespace: "Foo_1" })).field).to.equal(
      "spec.certificateAuthority.secretNamespace",
    );
    expect(refusal(tenantCa({ secretName: "foo-cacerts", secretNamespace: 3 })).message).to.include(
      "must be a namespace name",
    );
    const noSecret = refusal(
      tenantCa({ path: "/ca", secretNamespace: "foo", keyPassphraseFile: "/vault/secrets/passphrase" }),
    );
    expect([noSecret.field, noSecret.message]).to.deep.equal([
      "spec.certificateAuthority.secretNamespace",
      "spec.certificateAuthority.secretNamespace: is the namespace of secretName and keyPassphraseSecretRef; none is set",
    ]);
  });
});

describe("parseSignerSpec: spec.podCertificates", () => {
  const podOnly = {
    signerName: "example.com/pods",
    certificateAuthority: { secretName: "pods-cacerts" },
    policy: { tenants: { namespaces: ["foo"] }, spiffe: { trustDomain: "cluster.local" } },
  };

  it("is absent unless set: such a Signer never touches PodCertificateRequests", () => {
    expect(parseSignerSpec(minimal).podCertificates).to.equal(undefined);
  });

  it("takes DNS templates with {namespace}, {serviceAccount} and {podName}, and needs no CSR requesters", () => {
    const spec = parseSignerSpec({
      ...podOnly,
      podCertificates: { dnsNames: ["{podName}.{namespace}.pods.example"] },
    });
    expect(spec.podCertificates).to.deep.equal({ dnsNames: ["{podName}.{namespace}.pods.example"] });
    expect(parseSignerSpec({ ...podOnly, podCertificates: {} }).podCertificates).to.deep.equal({
      dnsNames: [],
    });
  });

  it("needs spec.policy.spiffe: a pod's certificate carries its SPIFFE ID", () => {
    const { spiffe: _, ...policy } = podOnly.policy;
    const error = thrownBy(SignerSpecError, () =>
      parseSignerSpec({ ...podOnly, policy, podCertificates: {} }),
    );
    expect(error.field).to.equal("spec.podCertificates");
  });

  it("refuses a DNS template with {podName} or {serviceAccount} but no {namespace}: two tenants would share a name", () => {
    for (const template of [
      "{serviceAccount}.mesh.example.com",
      "{podName}.pods.example",
      "{podName}.{serviceAccount}.x",
    ]) {
      const error = thrownBy(SignerSpecError, () =>
        parseSignerSpec({ ...podOnly, podCertificates: { dnsNames: ["{namespace}.ok.example", template] } }),
      );
      expect(error.field, template).to.equal("spec.podCertificates.dnsNames[1]");
      expect(error.message, template).to.include("without {namespace}");
    }
    expect(
      parseSignerSpec({
        ...podOnly,
        podCertificates: { dnsNames: ["{serviceAccount}.{namespace}.mesh.example.com"] },
      }).podCertificates?.dnsNames,
    ).to.deep.equal(["{serviceAccount}.{namespace}.mesh.example.com"]);
  });

  it("refuses wildcards and unknown placeholders in DNS templates", () => {
    for (const template of ["*.{namespace}.svc", "{pod}.svc", "{podName}..svc"]) {
      const error = thrownBy(SignerSpecError, () =>
        parseSignerSpec({ ...podOnly, podCertificates: { dnsNames: [template] } }),
      );
      expect(error.field, template).to.equal("spec.podCertificates.dnsNames[0]");
    }
  });

  it("still refuses a Signer that serves neither CSR requesters nor pods", () => {
    expect(() => parseSignerSpec(podOnly)).to.throw(SignerSpecError, /allows nobody/);
  });
});
