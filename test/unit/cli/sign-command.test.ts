import { X509Certificate } from "node:crypto";
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCliInProcess as cli } from "../../support/cli.js";
import {
  buildTestCertificateRequest,
  constructedPrimitiveRequests,
  makeCertificateAuthorityOutlivingItsRoot,
  makeCertificateAuthorityUnderRenewedRoot,
  makeTestCertificateAuthority,
  opensslRequest,
  opensslText,
  opensslVerify,
  testKey,
} from "../../support/pki.js";

/** Hardening of `csr-signer sign` found by the first adversarial review (issue 10). */
describe("csr-signer sign: refusals and limits from the adversarial review", function () {
  this.timeout(30_000);
  let dir: string;
  let caDir: string;
  let rootsPem: string;
  before(async () => {
    const ca = await makeTestCertificateAuthority({ name: "sign" });
    rootsPem = ca.files["root-cert.pem"]!;
    dir = execFileSync("mktemp", ["-d"], { encoding: "utf8" }).trim();
    caDir = join(dir, "ca");
    mkdirSync(caDir);
    for (const [name, content] of Object.entries(ca.files)) writeFileSync(join(caDir, name), content);
  });

  describe("BER constructed forms of primitive types (Go refuses the CSR; sign issued DNS:evil.example.com)", () => {
    for (const [name, pem] of Object.entries(constructedPrimitiveRequests(testKey("ecdsa-p256")))) {
      it(`refuses a ${name}: exit 1, one line naming DER, no certificate`, async () => {
        const run = await cli(["sign", "--ca", caDir], pem);
        expect(run.exitCode).to.equal(1);
        expect(run.stdout).to.equal("");
        expect(run.stderr).to.match(/^csr-signer sign: request DER: .*must be primitive in DER/);
        expect(run.stderr.trim().split("\n")).to.have.length(1);
      });
    }
  });

  describe("reserved subjects (sign issued O=system:masters, CN=alice with client auth)", () => {
    it("refuses O=system:masters, CN=alice with client auth (ReservedSubject), issuing nothing", async () => {
      const { csrPem } = opensslRequest("ec", "/O=system:masters/CN=alice");
      const run = await cli(["sign", "--ca", caDir, "--usages", "digital signature,client auth"], csrPem);
      expect(run.exitCode).to.equal(1);
      expect(run.stdout).to.equal("");
      expect(run.stderr).to.equal(
        'csr-signer sign: ReservedSubject: subject O="system:masters" is a reserved Kubernetes name ' +
          "(system:... or kubeadm:cluster-admins); pass --allow-reserved-subject to issue it anyway\n",
      );
    });

    it("refuses O=kubeadm:cluster-admins, CN=mallory with client auth (kubeadm binds cluster-admin to that group)", async () => {
      const { csrPem } = opensslRequest("ec", "/O=kubeadm:cluster-admins/CN=mallory");
      const run = await cli(["sign", "--ca", caDir, "--usages", "digital signature,client auth"], csrPem);
      expect(run.exitCode).to.equal(1);
      expect(run.stdout).to.equal("");
      expect(run.stderr).to.equal(
        'csr-signer sign: ReservedSubject: subject O="kubeadm:cluster-admins" is a reserved Kubernetes name ' +
          "(system:... or kubeadm:cluster-admins); pass --allow-reserved-subject to issue it anyway\n",
      );
    });

    for (const [what, subject] of [
      [
        "kubeadm:cluster-admins in any case with spaces around it",
        [{ type: "O", value: " KubeAdm:Cluster-Admins " }],
      ],
      ["any case and surrounding spaces in O", [{ type: "O", value: "  System:Masters " }]],
      ["a node name in CN", [{ type: "CN", value: "system:node:n1" }]],
      [
        "an OU",
        [
          { type: "CN", value: "bob" },
          { type: "OU", value: "SYSTEM:nodes" },
        ],
      ],
      ["an attribute type known only by OID", [{ type: "2.5.4.97", value: "\tsystem:x" }]],
    ] as const) {
      it(`refuses a reserved value (system:..., kubeadm:cluster-admins) in ${what} (ReservedSubject)`, async () => {
        const pem = buildTestCertificateRequest({ key: testKey("ecdsa-p256"), subject });
        const run = await cli(["sign", "--ca", caDir, "--usages", "digital signature,client auth"], pem);
        expect(run.exitCode).to.equal(1);
        expect(run.stdout).to.equal("");
        expect(run.stderr).to.match(
          /^csr-signer sign: ReservedSubject: subject .* is a reserved Kubernetes name/,
        );
      });
    }

    it("issues O=system:masters only with --allow-reserved-subject", async () => {
      const { csrPem } = opensslRequest("ec", "/O=system:masters/CN=alice");
      const run = await cli(
        ["sign", "--ca", caDir, "--usages", "digital signature,client auth", "--allow-reserved-subject"],
        csrPem,
      );
      expect(run.exitCode, run.stderr).to.equal(0);
      expect(opensslText(run.stdout)).to.match(/Subject: O\s*=\s*system:masters, CN\s*=\s*alice/);
    });

    it("issues honest subjects that merely contain the word (O=systems, CN=alice system:admin)", async () => {
      const pem = buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subject: [
          { type: "O", value: "systems" },
          { type: "CN", value: "alice system:admin" },
        ],
      });
      const run = await cli(["sign", "--ca", caDir, "--usages", "digital signature,client auth"], pem);
      expect(run.exitCode, run.stderr).to.equal(0);
      expect(opensslVerify(run.stdout, rootsPem)).to.match(/: OK/);
    });

    it("documents the flag in --help", async () => {
      const help = await cli(["sign", "--help"]);
      expect(help.stdout)
        .to.contain("--allow-reserved-subject")
        .and.to.contain("system:")
        .and.to.contain("kubeadm:cluster-admins");
    });
  });

  describe("malformed SANs (sign copied them verbatim where the controller refuses them)", () => {
    for (const [what, subjectAltNames, reason] of [
      ["email a@evil.com@allowed.com (two @)", { email: ["a@evil.com@allowed.com"] }, "InvalidEmailAddress"],
      [
        'email "x@evil.com"@allowed.com (quoted local part)',
        { email: ['"x@evil.com"@allowed.com'] },
        "InvalidEmailAddress",
      ],
      ["DNS *.*.com (a wildcard beyond the left-most label)", { dns: ["*.*.com"] }, "InvalidDnsName"],
      ["DNS -a..b (leading hyphen, empty label)", { dns: ["-a..b"] }, "InvalidDnsName"],
      ["DNS a*.example.com (a partial-label wildcard)", { dns: ["a*.example.com"] }, "InvalidDnsName"],
      [
        "IP ::ffff:10.96.0.1 (IPv4-mapped IPv6, read as 10.96.0.1 by TLS clients)",
        { ip: ["::ffff:10.96.0.1"] },
        "InvalidIpAddress",
      ],
    ] as const) {
      it(`refuses ${what} (${reason}), issuing nothing`, async () => {
        const pem = buildTestCertificateRequest({
          key: testKey("ecdsa-p256"),
          subject: [{ type: "CN", value: "web" }],
          subjectAltNames: { dns: ["web.example.com"], ...subjectAltNames },
        });
        const run = await cli(["sign", "--ca", caDir], pem);
        expect(run.exitCode).to.equal(1);
        expect(run.stdout).to.equal("");
        expect(run.stderr).to.match(new RegExp(`^csr-signer sign: ${reason}: (DNS|IP|email) SAN `));
        expect(run.stderr.trim().split("\n")).to.have.length(1);
      });
    }

    it("still issues well-formed SANs: *.example.com, 10.96.0.1, 2001:db8::1, ops@example.com", async () => {
      const pem = buildTestCertificateRequest({
        key: testKey("ecdsa-p256"),
        subject: [{ type: "CN", value: "web" }],
        subjectAltNames: {
          dns: ["*.example.com", "Web.Example.com"],
          ip: ["10.96.0.1", "2001:db8::1"],
          email: ["ops@example.com"],
        },
      });
      const run = await cli(["sign", "--ca", caDir], pem);
      expect(run.exitCode, run.stderr).to.equal(0);
      expect(opensslText(run.stdout)).to.match(
        /DNS:\*\.example\.com, DNS:Web\.Example\.com, IP Address:10\.96\.0\.1, IP Address:2001:DB8:0:0:0:0:0:1, email:ops@example\.com/,
      );
    });
  });

  describe("lifetime capped by the whole chain (a leaf outlived its root by 20 days)", () => {
    it("caps --duration 30d at the root's NotAfter under an intermediate valid 1 year and a root valid 10 days", async () => {
      const outliving = await makeCertificateAuthorityOutlivingItsRoot({
        rootLifetimeSeconds: 10 * 86400,
        intermediateLifetimeDays: 365,
      });
      const outlivingDir = join(dir, "outliving");
      mkdirSync(outlivingDir);
      for (const [name, content] of Object.entries(outliving.files))
        writeFileSync(join(outlivingDir, name), content);
      const { csrPem } = opensslRequest("ec", "/CN=web", ["subjectAltName=DNS:web.example.com"]);
      const run = await cli(["sign", "--ca", outlivingDir, "--duration", "30d"], csrPem);
      expect(run.exitCode, run.stderr).to.equal(0);
      const leaf = new X509Certificate(run.stdout);
      expect(new Date(leaf.validTo).toISOString()).to.equal(outliving.rootNotAfter.toISOString());
      const lastSecond = String(Math.floor(Date.parse(leaf.validTo) / 1000) - 1);
      expect(opensslVerify(run.stdout, outliving.files["root-cert.pem"]!, ["-attime", lastSecond])).to.match(
        /: OK/,
      );
      expect(readdirSync(outlivingDir)).to.have.length(4); // nothing written beside the CA
    });

    describe("a renewed root beside the old one in root-cert.pem (the cap and --include-root depended on their order)", () => {
      for (const order of ["short root first", "long root first"] as const) {
        it(`${order}: --duration 30d --include-root ends at the short root's NotAfter and appends the short root of cert-chain.pem`, async () => {
          const renewal = makeCertificateAuthorityUnderRenewedRoot({
            shortRootDays: 10,
            longRootDays: 365,
            intermediateDays: 365,
          });
          const renewalDir = join(dir, `renewal-${order.split(" ")[0]}`);
          mkdirSync(renewalDir);
          const roots =
            order === "short root first"
              ? renewal.shortRootPem + renewal.longRootPem
              : renewal.longRootPem + renewal.shortRootPem;
          writeFileSync(join(renewalDir, "ca-cert.pem"), renewal.intermediatePem);
          writeFileSync(join(renewalDir, "ca-key.pem"), renewal.intermediateKeyPem);
          writeFileSync(join(renewalDir, "root-cert.pem"), roots);
          writeFileSync(join(renewalDir, "cert-chain.pem"), renewal.intermediatePem + renewal.shortRootPem);
          const { csrPem } = opensslRequest("ec", "/CN=web", ["subjectAltName=DNS:web.example.com"]);
          const run = await cli(["sign", "--ca", renewalDir, "--duration", "30d", "--include-root"], csrPem);
          expect(run.exitCode, run.stderr).to.equal(0);
          const leaf = new X509Certificate(run.stdout);
          expect(new Date(leaf.validTo).toISOString()).to.equal(renewal.shortRootNotAfter.toISOString());
          expect(run.stdout.endsWith(renewal.shortRootPem)).to.equal(true);
          const lastSecond = String(Math.floor(Date.parse(leaf.validTo) / 1000) - 1);
          expect(opensslVerify(run.stdout, renewal.shortRootPem, ["-attime", lastSecond])).to.match(/: OK/);
        });
      }
    });
  });
});
