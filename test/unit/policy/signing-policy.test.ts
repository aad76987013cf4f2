import { expect } from "chai";
import { parseCertificateRequest } from "../../../src/pki/certificate-request.js";
import type { DistinguishedName } from "../../../src/pki/names.js";
import type { SubjectAlternativeNames } from "../../../src/pki/subject-alternative-names.js";
import {
  evaluateSigningRequest,
  parseServiceAccountUsername,
  type Requester,
  type SigningDecision,
} from "../../../src/policy/signing-policy.js";
import { parseSignerSpec } from "../../../src/policy/signer-spec.js";
import type { SignerSpec } from "../../../src/api/signer.js";
import {
  buildTestCertificateRequest,
  caTrueExtension,
  testKey,
  type TestKeyType,
} from "../../support/pki.js";

const istiod: Requester = {
  username: "system:serviceaccount:istio-system:istiod",
  groups: ["system:serviceaccounts", "system:serviceaccounts:istio-system", "system:authenticated"],
};
const fooWorkload: Requester = {
  username: "system:serviceaccount:foo:web",
  groups: ["system:serviceaccounts", "system:serviceaccounts:foo"],
};
const istioUsages = ["digital signature", "key encipherment", "server auth", "client auth"];

function fooSigner(policy: Record<string, unknown> = {}, issuance: Record<string, unknown> = {}): SignerSpec {
  return parseSignerSpec({
    signerName: "example.com/foo",
    certificateAuthority: { secretName: "foo-cacerts" },
    issuance: { maxDuration: "168h", ...issuance },
    policy: {
      requesters: {
        registrationAuthorities: ["istio-system/istiod"],
        tenantServiceAccounts: true,
        users: ["alice"],
        groups: ["ops"],
      },
      tenants: { namespaces: ["foo"] },
      spiffe: { trustDomain: "cluster.local" },
      dnsNames: ["*.{namespace}.svc", "{serviceAccount}.{namespace}.svc.cluster.local", "static.example.com"],
      ...policy,
    },
  });
}

function decide(
  spec: SignerSpec,
  requester: Requester,
  sans: Partial<SubjectAlternativeNames>,
  options: {
    subject?: DistinguishedName;
    key?: TestKeyType;
    usages?: string[];
    expirationSeconds?: number;
    caTrue?: boolean;
    tenants?: string[];
  } = {},
): SigningDecision {
  const request = parseCertificateRequest(
    buildTestCertificateRequest({
      key: testKey(options.key ?? "ecdsa-p256"),
      subject: options.subject ?? [{ type: "O", value: "" }],
      subjectAltNames: sans,
      extraExtensions: options.caTrue ? [caTrueExtension] : [],
    }),
  );
  return evaluateSigningRequest(
    spec,
    {
      requester,
      request,
      usages: options.usages ?? istioUsages,
      ...(options.expirationSeconds !== undefined ? { expirationSeconds: options.expirationSeconds } : {}),
    },
    { tenantNamespaces: new Set(options.tenants ?? ["foo"]) },
  );
}

function expectRefused(decision: SigningDecision, reason: string, rule: string, message?: RegExp): void {
  if (decision.allowed) expect.fail(`expected ${reason}, but it was allowed by ${decision.rule}`);
  expect(decision.reason).to.equal(reason);
  expect(decision.rule).to.equal(rule);
  expect(decision.message).to.contain(`(rule ${rule})`);
  if (message) expect(decision.message).to.match(message);
}

describe("evaluateSigningRequest", () => {
  describe("Istio registration authority (istiod asks on behalf of workloads)", () => {
    it("grants a tenant workload's SPIFFE ID with an empty subject and the requested usages", () => {
      const decision = decide(
        fooSigner(),
        istiod,
        { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
        { expirationSeconds: 86400 },
      );
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.rule).to.equal("spec.policy.requesters.registrationAuthorities");
      expect(decision.identity).to.equal("spiffe://cluster.local/ns/foo/sa/web");
      expect(decision.grant.subject).to.deep.equal([]);
      expect(decision.grant.subjectAltNames.uri).to.deep.equal(["spiffe://cluster.local/ns/foo/sa/web"]);
      expect(decision.grant.usages).to.deep.equal(istioUsages);
      expect(decision.grant.lifetime).to.deep.equal({
        requestedSeconds: 86400,
        defaultSeconds: 86400,
        maximumSeconds: 168 * 3600,
      });
    });

    it("refuses another tenant's SPIFFE ID (Istio CVE-2022-39388): namespace bar is not a tenant of foo", () => {
      expectRefused(
        decide(fooSigner(), istiod, { uri: ["spiffe://cluster.local/ns/bar/sa/web"] }),
        "NamespaceNotTenant",
        "spec.policy.tenants",
        /namespace bar is not a tenant of example.com\/foo/,
      );
    });

    it("grants istiod's own serving certificate (DNS SANs of its namespace, 10-year request kept for clamping)", () => {
      const spec = fooSigner({
        tenants: { namespaces: ["istio-system"] },
        dnsNames: ["istiod.{namespace}.svc", "istio-pilot.{namespace}.svc"],
      });
      const decision = decide(
        spec,
        istiod,
        { dns: ["istiod.istio-system.svc", "istio-pilot.istio-system.svc"] },
        {
          key: "rsa-2048",
          usages: ["digital signature", "key encipherment", "server auth"],
          expirationSeconds: 10 * 365 * 86400,
          tenants: ["istio-system"],
        },
      );
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.grant.lifetime.requestedSeconds).to.equal(10 * 365 * 86400);
      expect(decision.grant.lifetime.maximumSeconds).to.equal(168 * 3600);
      expect(decision.grant.usages).not.to.include("client auth");
    });

    it("refuses a DNS SAN of another namespace next to a SPIFFE ID (SAN spoofing)", () => {
      expectRefused(
        decide(fooSigner(), istiod, { uri: ["spiffe://cluster.local/ns/foo/sa/web"], dns: ["api.bar.svc"] }),
        "DnsNameNotAllowed",
        "spec.policy.dnsNames",
        /api.bar.svc matches no allowed pattern for namespace foo/,
      );
    });
  });

  describe("tenant workloads asking for themselves", () => {
    it("grants exactly their own identity, with DNS names of their namespace", () => {
      const decision = decide(fooSigner(), fooWorkload, {
        uri: ["spiffe://cluster.local/ns/foo/sa/web"],
        dns: ["web.foo.svc.cluster.local", "API.foo.svc"],
      });
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.rule).to.equal("spec.policy.requesters.tenantServiceAccounts");
      expect(decision.grant.subjectAltNames.dns).to.deep.equal(["web.foo.svc.cluster.local", "api.foo.svc"]); // case normalised
    });

    it("refuses another service account's identity in the same namespace", () => {
      expectRefused(
        decide(fooSigner(), fooWorkload, { uri: ["spiffe://cluster.local/ns/foo/sa/admin"] }),
        "SpiffeIdentityMismatch",
        "spec.policy.requesters.tenantServiceAccounts",
        /may only obtain its own identity/,
      );
    });

    it("refuses a workload of namespace bar outright (not a requester of signer foo)", () => {
      const barWorkload = { username: "system:serviceaccount:bar:web", groups: [] };
      expectRefused(
        decide(fooSigner(), barWorkload, { uri: ["spiffe://cluster.local/ns/bar/sa/web"] }),
        "RequesterNotAllowed",
        "spec.policy.requesters",
      );
    });

    it("refuses a SPIFFE ID of another trust domain", () => {
      expectRefused(
        decide(fooSigner(), fooWorkload, { uri: ["spiffe://evil.org/ns/foo/sa/web"] }),
        "SpiffeTrustDomainMismatch",
        "spec.policy.spiffe.trustDomain",
      );
    });

    it("refuses a second URI SAN and non-SPIFFE URIs", () => {
      expectRefused(
        decide(fooSigner(), fooWorkload, {
          uri: ["spiffe://cluster.local/ns/foo/sa/web", "spiffe://cluster.local/ns/foo/sa/x"],
        }),
        "UriSanNotAllowed",
        "spec.policy.spiffe",
        /exactly one URI SAN/,
      );
      expectRefused(
        decide(fooSigner(), fooWorkload, { uri: ["https://foo.example/"] }),
        "UriSanNotAllowed",
        "spec.policy.spiffe",
      );
    });
  });

  describe("people and groups", () => {
    it("grant only names without namespace placeholders, and never a workload identity", () => {
      const alice = { username: "alice", groups: [] };
      const decision = decide(fooSigner(), alice, { dns: ["static.example.com"] });
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.rule).to.equal("spec.policy.requesters.users");
      expectRefused(
        decide(fooSigner(), alice, { dns: ["web.foo.svc"] }),
        "DnsNameNotAllowed",
        "spec.policy.dnsNames",
      );
      expectRefused(
        decide(
          fooSigner(),
          { username: "bob", groups: ["ops"] },
          { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
        ),
        "SpiffeIdentityMismatch",
        "spec.policy.requesters.groups",
        /not a workload/,
      );
    });
  });

  describe("refusals by rule", () => {
    const cases: [string, () => SigningDecision, string, string][] = [
      [
        "CA:TRUE requested",
        () =>
          decide(fooSigner(), istiod, { uri: ["spiffe://cluster.local/ns/foo/sa/web"] }, { caTrue: true }),
        "CertificateAuthorityRequested",
        "spec.issuance",
      ],
      [
        "an RSA-1024 key",
        () =>
          decide(fooSigner(), istiod, { uri: ["spiffe://cluster.local/ns/foo/sa/web"] }, { key: "rsa-1024" }),
        "KeyNotAllowed",
        "spec.issuance.keyTypes",
      ],
      [
        "a P-384 key when only P-256 is allowed",
        () =>
          decide(
            fooSigner({}, { keyTypes: { ecdsaCurves: ["P-256"] } }),
            istiod,
            { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
            { key: "ecdsa-p384" },
          ),
        "KeyNotAllowed",
        "spec.issuance.keyTypes",
      ],
      [
        "O=system:masters",
        () =>
          decide(
            fooSigner(),
            istiod,
            { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
            { subject: [{ type: "O", value: "system:masters" }] },
          ),
        "ReservedSubject",
        "spec.policy.subject",
      ],
      [
        "CN=system:node:n1",
        () =>
          decide(
            fooSigner(),
            istiod,
            { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
            { subject: [{ type: "CN", value: "system:node:n1" }] },
          ),
        "ReservedSubject",
        "spec.policy.subject",
      ],
      [
        "too many SANs",
        () =>
          decide(fooSigner({ maxSubjectAltNames: 2 }), fooWorkload, {
            dns: ["a.foo.svc", "b.foo.svc", "c.foo.svc"],
          }),
        "TooManySubjectAltNames",
        "spec.policy.maxSubjectAltNames",
      ],
      [
        "a wildcard when not allowed",
        () => decide(fooSigner(), fooWorkload, { dns: ["*.foo.svc"] }),
        "WildcardNotAllowed",
        "spec.policy.allowWildcardDnsNames",
      ],
      [
        "a wildcard that is not a whole left-most label",
        () => decide(fooSigner({ allowWildcardDnsNames: true }), fooWorkload, { dns: ["a*.foo.svc"] }),
        "InvalidDnsName",
        "spec.policy.dnsNames",
      ],
      [
        "an IP SAN with no ranges configured",
        () => decide(fooSigner(), fooWorkload, { ip: ["10.0.0.1"] }),
        "IpAddressNotAllowed",
        "spec.policy.ipAddressRanges",
      ],
      [
        "an IP SAN outside the ranges",
        () => decide(fooSigner({ ipAddressRanges: ["10.1.0.0/16"] }), fooWorkload, { ip: ["10.2.0.1"] }),
        "IpAddressNotAllowed",
        "spec.policy.ipAddressRanges",
      ],
      [
        // Issue 10 item 5: Go reads ::ffff:10.96.0.1 as 10.96.0.1, which 10.1.0.0/16 does not allow.
        "an IPv4-mapped IPv6 SAN outside the IPv4 ranges under ::/0 (::ffff:10.96.0.1)",
        () =>
          decide(fooSigner({ ipAddressRanges: ["10.1.0.0/16", "::/0"] }), fooWorkload, {
            ip: ["::ffff:10.96.0.1"],
          }),
        "IpAddressNotAllowed",
        "spec.policy.ipAddressRanges",
      ],
      [
        // Go reads ::10.0.0.5 as the IPv6 address ::a00:5 (To4 is nil), which no IPv4 range contains.
        "an IPv4-compatible IPv6 SAN (::10.0.0.5) under the IPv4 range 10.0.0.0/8 only",
        () =>
          decide(fooSigner({ ipAddressRanges: ["10.0.0.0/8"] }), fooWorkload, {
            ip: ["::10.0.0.5"],
          }),
        "IpAddressNotAllowed",
        "spec.policy.ipAddressRanges",
      ],
      [
        "an email SAN with no domains configured",
        () => decide(fooSigner(), fooWorkload, { email: ["a@example.com"] }),
        "EmailNotAllowed",
        "spec.policy.emailDomains",
      ],
      ["no SAN at all", () => decide(fooSigner(), fooWorkload, {}), "NoIdentity", "spec.policy"],
      [
        "only usages the signer does not allow",
        () =>
          decide(fooSigner(), fooWorkload, { dns: ["a.foo.svc"] }, { usages: ["code signing", "cert sign"] }),
        "NoAllowedUsages",
        "spec.issuance.allowedUsages",
      ],
      [
        "a CN that is no SAN when CNs are copied",
        () =>
          decide(
            fooSigner({ subject: { commonNameFromRequest: true } }),
            fooWorkload,
            { dns: ["a.foo.svc"] },
            { subject: [{ type: "CN", value: "b.foo.svc" }] },
          ),
        "CommonNameNotASubjectAltName",
        "spec.policy.subject.commonNameFromRequest",
      ],
    ];
    for (const [name, run, reason, rule] of cases) {
      it(`${name}: ${reason}`, () => expectRefused(run(), reason, rule));
    }
  });

  describe("allowed shapes", () => {
    it("wildcards when allowed, matched label for label", () => {
      const decision = decide(fooSigner({ allowWildcardDnsNames: true }), fooWorkload, {
        dns: ["*.foo.svc"],
      });
      expect(decision.allowed).to.equal(true);
    });
    it("IP SANs inside configured IPv4 and IPv6 ranges, emails in configured domains", () => {
      const spec = fooSigner({ ipAddressRanges: ["10.1.0.0/16", "fd00::/8"], emailDomains: ["example.com"] });
      const decision = decide(spec, fooWorkload, { ip: ["10.1.2.3", "fd12::1"], email: ["ops@Example.com"] });
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.grant.subjectAltNames.ip).to.deep.equal(["10.1.2.3", "fd12::1"]);
    });
    it("an IPv4-mapped IPv6 SAN compares as its IPv4 address, against IPv4 and mapped ranges alike", () => {
      const ipv4Range = fooSigner({ ipAddressRanges: ["10.1.0.0/16"] });
      expect(decide(ipv4Range, fooWorkload, { ip: ["::ffff:10.1.2.3"] }).allowed).to.equal(true);
      const mappedRange = fooSigner({ ipAddressRanges: ["::ffff:10.1.0.0/112"] });
      expect(decide(mappedRange, fooWorkload, { ip: ["10.1.2.3"] }).allowed).to.equal(true);
      expect(decide(mappedRange, fooWorkload, { ip: ["10.2.0.1"] }).allowed).to.equal(false);
      expect(decide(fooSigner({ ipAddressRanges: ["::/0"] }), fooWorkload, { ip: ["::1"] }).allowed).to.equal(
        true,
      );
    });
    it("the subject comes from the template, never from the request", () => {
      const spec = fooSigner({ subject: { organizations: ["Foo Corp"], commonNameFromRequest: true } });
      const decision = decide(
        spec,
        fooWorkload,
        { dns: ["a.foo.svc"] },
        {
          subject: [
            { type: "CN", value: "A.foo.svc" },
            { type: "O", value: "Evil Corp" },
          ],
        },
      );
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.grant.subject).to.deep.equal([
        { type: "O", value: "Foo Corp" },
        { type: "CN", value: "a.foo.svc" },
      ]);
    });
    it("drops requested usages the signer does not allow and keeps the rest", () => {
      const decision = decide(
        fooSigner(),
        fooWorkload,
        { dns: ["a.foo.svc"] },
        { usages: ["digital signature", "server auth", "code signing", "cert sign"] },
      );
      if (!decision.allowed) expect.fail(decision.message);
      expect(decision.grant.usages).to.deep.equal(["digital signature", "server auth"]);
    });
  });
});

describe("evaluateSigningRequest: email SANs are plain mailboxes (a split at the last @ let three shapes through)", () => {
  const spec = fooSigner({ emailDomains: ["allowed.com"] });
  for (const email of ["a@evil.com@allowed.com", '"x@evil.com"@allowed.com', "@allowed.com"]) {
    it(`refuses ${email} (InvalidEmailAddress)`, () => {
      expectRefused(
        decide(spec, fooWorkload, { dns: ["a.foo.svc"], email: [email] }),
        "InvalidEmailAddress",
        "spec.policy.emailDomains",
        /is not a plain mailbox \(exactly one "@", an unquoted dot-atom local part, a domain\)/,
      );
    });
  }

  for (const email of ["a@sub.allowed.com", "a@allowed.com.evil.com", "a@notallowed.com"]) {
    it(`refuses ${email}: the domain is compared whole (EmailNotAllowed)`, () => {
      expectRefused(
        decide(spec, fooWorkload, { email: [email] }),
        "EmailNotAllowed",
        "spec.policy.emailDomains",
      );
    });
  }

  it("grants honest mailboxes in an allowed domain, the domain in any case", () => {
    const decision = decide(spec, fooWorkload, {
      email: ["ops@allowed.com", "First.Last+tag@ALLOWED.com", "o'brien@Allowed.Com"],
    });
    if (!decision.allowed) expect.fail(decision.message);
    expect(decision.grant.subjectAltNames.email).to.deep.equal([
      "ops@allowed.com",
      "First.Last+tag@ALLOWED.com",
      "o'brien@Allowed.Com",
    ]);
  });
});

describe("evaluateSigningRequest: reserved subjects in any case and with surrounding spaces", () => {
  for (const value of [
    " system:masters",
    "System:Masters ",
    "\tSYSTEM:nodes",
    "kubeadm:cluster-admins",
    " Kubeadm:Cluster-Admins\t",
  ]) {
    it(`refuses O=${JSON.stringify(value)} (ReservedSubject)`, () => {
      expectRefused(
        decide(
          fooSigner(),
          istiod,
          { uri: ["spiffe://cluster.local/ns/foo/sa/web"] },
          { subject: [{ type: "O", value }] },
        ),
        "ReservedSubject",
        "spec.policy.subject",
      );
    });
  }
});

describe("parseServiceAccountUsername: system:serviceaccount:<namespace>:<name>, exactly", () => {
  const cases: [string, { namespace: string; serviceAccount: string } | undefined][] = [
    ["system:serviceaccount:foo:default", { namespace: "foo", serviceAccount: "default" }],
    ["system:serviceaccount:istio-system:istiod", { namespace: "istio-system", serviceAccount: "istiod" }],
    ["system:serviceaccount:foo", undefined],
    ["system:serviceaccount:foo:", undefined],
    ["system:serviceaccount::default", undefined],
    ["system:serviceaccount:", undefined],
    ["system:serviceaccount:foo:bar:baz", undefined],
    ["system:serviceaccount:foo:bar:", undefined],
    ["system:serviceaccounts:foo:bar", undefined],
    ["System:serviceaccount:foo:bar", undefined],
    [" system:serviceaccount:foo:bar", undefined],
    ["user:system:serviceaccount:foo:bar", undefined],
    ["alice", undefined],
    ["", undefined],
  ];
  for (const [username, expected] of cases)
    it(JSON.stringify(username), () => {
      expect(parseServiceAccountUsername(username)).to.deep.equal(expected);
    });
});
