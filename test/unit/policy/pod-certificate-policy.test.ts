import { expect } from "chai";
import type { SignerSpec } from "../../../src/api/signer.js";
import {
  decidePodCertificate,
  podKeyTypesAllowed,
  type PodCertificateContext,
  type PodCertificateDecision,
  type PodCertificateFacts,
} from "../../../src/policy/pod-certificate-policy.js";
import { parseSignerSpec } from "../../../src/policy/signer-spec.js";

const now = new Date("2026-12-02T03:00:00.500Z");
const hour = 3600_000;

function podSigner(overrides: { issuance?: Record<string, unknown>; dnsNames?: string[] } = {}): SignerSpec {
  return parseSignerSpec({
    signerName: "example.com/foo",
    certificateAuthority: { secretName: "foo-cacerts" },
    issuance: { maxDuration: "168h", ...overrides.issuance },
    policy: {
      tenants: { namespaces: ["foo"] },
      spiffe: { trustDomain: "cluster.local" },
      subject: { organizations: ["Example"] },
    },
    podCertificates: { dnsNames: overrides.dnsNames ?? [] },
  });
}

const facts: PodCertificateFacts = {
  namespace: "foo",
  podName: "web-0",
  serviceAccountName: "web",
  maxExpirationSeconds: 86_400,
  userAnnotationKeys: [],
  key: {
    keyType: "ECDSAP256",
    description: "ECDSA-P-256",
    publicKeyDescription: { algorithm: "ECDSA", curve: "P-256" },
    proofVerified: true,
  },
};

const context: PodCertificateContext = {
  tenantNamespaces: new Set(["foo"]),
  now,
  chain: { notBefore: new Date("2026-01-01T00:00:00Z"), notAfter: new Date("2027-01-01T00:00:00Z") },
  refreshFraction: 0.5,
};

function issued(decision: PodCertificateDecision): Extract<PodCertificateDecision, { outcome: "issue" }> {
  if (decision.outcome !== "issue") throw new Error(`expected issuance, got ${JSON.stringify(decision)}`);
  return decision;
}

describe("decidePodCertificate: identity, key types and lifetimes of pod certificates", () => {
  it("grants the pod's SPIFFE ID from the verified fields, with the Signer's organizations and workload usages", () => {
    const decision = issued(decidePodCertificate(podSigner(), facts, context));
    expect(decision.identity).to.equal("spiffe://cluster.local/ns/foo/sa/web");
    expect(decision.grant.subjectAltNames).to.deep.equal({
      dns: [],
      ip: [],
      uri: ["spiffe://cluster.local/ns/foo/sa/web"],
      email: [],
    });
    expect(decision.grant.subject).to.deep.equal([{ type: "O", value: "Example" }]);
    // No key encipherment for an ECDSA key.
    expect(decision.grant.usages).to.deep.equal(["digital signature", "server auth", "client auth"]);
    expect(decision.rule).to.equal("spec.podCertificates");
  });

  it("gives an RSA key key encipherment too", () => {
    const rsa = {
      ...facts,
      key: {
        ...facts.key,
        keyType: "RSA3072" as const,
        description: "RSA-3072",
        publicKeyDescription: { algorithm: "RSA" as const, bits: 3072, publicExponent: 65537n },
      },
    };
    expect(issued(decidePodCertificate(podSigner(), rsa, context)).grant.usages).to.include(
      "key encipherment",
    );
  });

  it("fills the DNS templates with the namespace, service account and pod name", () => {
    const spec = podSigner({
      dnsNames: ["{podName}.{serviceAccount}.{namespace}.pods.example", "{serviceAccount}.{namespace}.svc"],
    });
    expect(issued(decidePodCertificate(spec, facts, context)).grant.subjectAltNames.dns).to.deep.equal([
      "web-0.web.foo.pods.example",
      "web.foo.svc",
    ]);
  });

  it("sets notBefore 1 minute back (whole seconds), the lifetime to maxExpirationSeconds, and beginRefreshAt at 50-80%", () => {
    for (const [fraction, share] of [
      [0, 0.5],
      [0.5, 0.65],
      [0.999999, 0.8],
    ] as const) {
      const { window } = issued(
        decidePodCertificate(podSigner(), facts, { ...context, refreshFraction: fraction }),
      );
      expect(window.notBefore.toISOString()).to.equal("2026-12-02T02:59:00.000Z");
      expect(window.notAfter.getTime() - window.notBefore.getTime()).to.equal(86_400_000);
      expect((window.beginRefreshAt.getTime() - window.notBefore.getTime()) / 86_400_000).to.be.closeTo(
        share,
        0.0001,
      );
      expect(window.beginRefreshAt.getTime() % 1000).to.equal(0);
    }
  });

  it("caps the lifetime at the Signer's maxDuration when the request allows more", () => {
    const { window } = issued(
      decidePodCertificate(
        podSigner({ issuance: { maxDuration: "2h", defaultDuration: "1h" } }),
        facts,
        context,
      ),
    );
    expect(window.notAfter.getTime() - window.notBefore.getTime()).to.equal(2 * hour);
  });

  it("keeps beginRefreshAt 10 minutes inside the shortest (1 hour) certificate", () => {
    for (const refreshFraction of [0, 0.999]) {
      const { window } = issued(
        decidePodCertificate(
          podSigner(),
          { ...facts, maxExpirationSeconds: 3600 },
          { ...context, refreshFraction },
        ),
      );
      expect(window.notAfter.getTime() - window.notBefore.getTime()).to.equal(hour);
      expect(window.beginRefreshAt.getTime() - window.notBefore.getTime()).to.be.at.least(600_000);
      expect(window.notAfter.getTime() - window.beginRefreshAt.getTime()).to.be.at.least(600_000);
    }
  });

  it("ends the certificate with the CA chain when the chain ends first, and waits when less than 1 hour is left", () => {
    const chainEnd = new Date(now.getTime() + 5 * hour);
    const { window } = issued(
      decidePodCertificate(podSigner(), facts, {
        ...context,
        chain: { ...context.chain, notAfter: chainEnd },
      }),
    );
    expect(window.notAfter.toISOString()).to.equal("2026-12-02T08:00:00.000Z");
    const soon = decidePodCertificate(podSigner(), facts, {
      ...context,
      chain: { ...context.chain, notAfter: new Date(now.getTime() + 30 * 60_000) },
    });
    expect(soon).to.include({ outcome: "wait", reason: "CertificateAuthorityExpiringSoon" });
  });

  it("never starts before the signing certificate", () => {
    const fresh = new Date(now.getTime() - 10_000);
    const { window } = issued(
      decidePodCertificate(podSigner(), facts, { ...context, chain: { ...context.chain, notBefore: fresh } }),
    );
    expect(window.notBefore.getTime()).to.equal(fresh.getTime());
  });

  const refusals: [
    string,
    SignerSpec,
    Partial<PodCertificateFacts>,
    Partial<PodCertificateContext>,
    string,
    string,
    RegExp,
  ][] = [
    [
      "any unverifiedUserAnnotations key",
      podSigner(),
      { userAnnotationKeys: ["example.com/sans"] },
      {},
      "Denied",
      "InvalidUnverifiedUserAnnotations",
      /recognizes no spec.unverifiedUserAnnotations keys; got example.com\/sans \(rule spec.podCertificates\)/,
    ],
    [
      "an Ed25519 key",
      podSigner(),
      {
        key: {
          keyType: "ED25519",
          description: "Ed25519",
          publicKeyDescription: undefined,
          proofVerified: true,
        },
      },
      {},
      "Denied",
      "UnsupportedKeyType",
      /Ed25519 is not accepted by example.com\/foo; use keyType ECDSAP256 in the podCertificate volume \(accepted: ECDSAP256, ECDSAP384, RSA3072, RSA4096\) \(rule spec.issuance.keyTypes\)/,
    ],
    [
      "a P-521 key",
      podSigner(),
      {
        key: {
          keyType: "ECDSAP521",
          description: "ECDSA-P-521",
          publicKeyDescription: { algorithm: "ECDSA", curve: "P-521" },
          proofVerified: true,
        },
      },
      {},
      "Denied",
      "UnsupportedKeyType",
      /ECDSA-P-521 is not accepted/,
    ],
    [
      "an RSA 4096 key above the Signer's rsaMaximumBits",
      podSigner({ issuance: { keyTypes: { rsaMaximumBits: 3072 } } }),
      {
        key: {
          keyType: "RSA4096",
          description: "RSA-4096",
          publicKeyDescription: { algorithm: "RSA", bits: 4096, publicExponent: 65537n },
          proofVerified: true,
        },
      },
      {},
      "Denied",
      "UnsupportedKeyType",
      /accepted: ECDSAP256, ECDSAP384, RSA3072\)/,
    ],
    [
      "an RSA key with exponent 3",
      podSigner(),
      {
        key: {
          keyType: "RSA3072",
          description: "RSA-3072",
          publicKeyDescription: { algorithm: "RSA", bits: 3072, publicExponent: 3n },
          proofVerified: true,
        },
      },
      {},
      "Denied",
      "UnsupportedKeyType",
      /exponent/,
    ],
    [
      "a proof that does not verify",
      podSigner(),
      { key: { ...facts.key, proofVerified: false } },
      {},
      "Denied",
      "InvalidProofOfPossession",
      /does not verify/,
    ],
    [
      "a pod in a namespace that is not a tenant",
      podSigner(),
      { namespace: "bar" },
      {},
      "Denied",
      "NamespaceNotTenant",
      /namespace bar is not a tenant of example.com\/foo \(rule spec.policy.tenants\)/,
    ],
    [
      "a pod name with dots in a DNS template",
      podSigner({ dnsNames: ["{podName}.{namespace}.svc"] }),
      { podName: "web.evil.example" },
      {},
      "Denied",
      "InvalidDnsName",
      /\{podName\} is web.evil.example, not a single DNS label/,
    ],
    [
      "a template that grows past a DNS name's length",
      podSigner({ dnsNames: ["{podName}.{podName}.{podName}.{podName}.{namespace}.svc"] }),
      { podName: "p".repeat(63) },
      {},
      "Denied",
      "InvalidDnsName",
      /is not a DNS name/,
    ],
    [
      "a Signer whose usages leave no workload usage",
      podSigner({ issuance: { allowedUsages: ["code signing"] } }),
      {},
      {},
      "Denied",
      "NoAllowedUsages",
      /rule spec.issuance.allowedUsages/,
    ],
    [
      "a Signer whose maxDuration is below the API's 1 hour",
      podSigner({ issuance: { maxDuration: "30m", defaultDuration: "10m" } }),
      {},
      {},
      "Failed",
      "LifetimeUnsatisfiable",
      /below the API's minimum of 3600s/,
    ],
  ];
  for (const [what, spec, factChanges, contextChanges, condition, reason, message] of refusals) {
    it(`refuses ${what}: ${condition} ${reason}`, () => {
      const decision = decidePodCertificate(
        spec,
        { ...facts, ...factChanges },
        { ...context, ...contextChanges },
      );
      expect(decision).to.include({ outcome: "refuse", condition, reason });
      expect((decision as { message: string }).message).to.match(message);
    });
  }

  it("lists the API's key types a Signer's keyTypes accept", () => {
    expect(
      podKeyTypesAllowed({ rsaMinimumBits: 2048, rsaMaximumBits: 8192, ecdsaCurves: ["P-256", "P-384"] }),
    ).to.deep.equal(["ECDSAP256", "ECDSAP384", "RSA3072", "RSA4096"]);
    expect(podKeyTypesAllowed({ rsaMinimumBits: 4096, rsaMaximumBits: 8192, ecdsaCurves: [] })).to.deep.equal(
      ["RSA4096"],
    );
    expect(
      podKeyTypesAllowed({ rsaMinimumBits: 2048, rsaMaximumBits: 2048, ecdsaCurves: ["P-384"] }),
    ).to.deep.equal(["ECDSAP384"]);
  });
});
