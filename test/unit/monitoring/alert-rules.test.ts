/**
 * manifests/monitoring: the rule file passes `promtool check rules` and its unit tests
 * (csr-signer-alerts.test.yaml, whose input series the metrics-serving integration test checks
 * against a real scrape), and the PrometheusRule carries exactly the rule file's groups.
 * promtool is built from the Prometheus Go module by `hack/testbin/build.sh promtool`.
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { loadYaml } from "@kubernetes/client-node";
import { repositoryRoot, testBinary } from "../../support/testbin.js";

const monitoring = path.join(repositoryRoot, "manifests/monitoring");
const rulesFile = path.join(monitoring, "csr-signer-alerts.rules.yaml");

function promtool(args: string[]): string {
  return execFileSync(testBinary("PROMTOOL_BIN_DIR", "promtool"), args, {
    cwd: monitoring,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
}

describe("alert rules (manifests/monitoring)", () => {
  it("pass promtool check rules", () => {
    expect(promtool(["check", "rules", rulesFile])).to.match(/SUCCESS: 8 rules found/);
  });

  it("pass their promtool unit tests", () => {
    expect(promtool(["test", "rules", "csr-signer-alerts.test.yaml"])).to.contain("SUCCESS");
  });

  it("fail promtool's unit tests when a threshold changes (the tests can fail)", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "csr-signer-rules-"));
    try {
      const original = readFileSync(rulesFile, "utf8");
      const broken = original.replace(
        "csr_signer_approved_unsigned_oldest_seconds) > 60",
        "csr_signer_approved_unsigned_oldest_seconds) > 600",
      );
      expect(broken).not.to.equal(original);
      writeFileSync(path.join(dir, "csr-signer-alerts.rules.yaml"), broken);
      copyFileSync(
        path.join(monitoring, "csr-signer-alerts.test.yaml"),
        path.join(dir, "csr-signer-alerts.test.yaml"),
      );
      const binary = testBinary("PROMTOOL_BIN_DIR", "promtool");
      let output = "";
      try {
        execFileSync(binary, ["test", "rules", "csr-signer-alerts.test.yaml"], {
          cwd: dir,
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        });
      } catch (error) {
        output =
          String((error as { stdout?: string }).stdout ?? "") +
          String((error as { stderr?: string }).stderr ?? "");
      }
      expect(output).to.contain("CsrSignerApprovedRequestsUnsigned");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("PrometheusRule spec is the rule file's content", () => {
    const rules = loadYaml(readFileSync(rulesFile, "utf8"));
    const wrapped = loadYaml<{ kind: string; spec: unknown }>(
      readFileSync(path.join(monitoring, "prometheusrule.yaml"), "utf8"),
    );
    expect(wrapped.kind).to.equal("PrometheusRule");
    expect(wrapped.spec).to.deep.equal(rules);
  });
});
