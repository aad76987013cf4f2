/**
 * The Prometheus Operator's own ServiceMonitor and PrometheusRule CRDs (hack/prometheus-operator-crds.sh
 * copies them from its Go module into $CSR_SIGNER_CACHE): the folder in $PROMETHEUS_OPERATOR_CRDS_DIR,
 * else the one the script's --print-dir names. Only asks; fetching is `make monitoring-crds`'s job.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { repositoryRoot } from "./testbin.js";

export const prometheusOperatorCrdNames = [
  "servicemonitors.monitoring.coreos.com",
  "prometheusrules.monitoring.coreos.com",
];

/** The two CRD files; throws, naming `make monitoring-crds`, when they are not there. */
export function prometheusOperatorCrdFiles(): string[] {
  const folder =
    process.env.PROMETHEUS_OPERATOR_CRDS_DIR ||
    execFileSync(path.join(repositoryRoot, "hack/prometheus-operator-crds.sh"), ["--print-dir"], {
      encoding: "utf8",
    })
      .trim()
      .replace(/^PROMETHEUS_OPERATOR_CRDS_DIR=/, "");
  return prometheusOperatorCrdNames.map((name) => {
    const [plural, ...group] = name.split(".");
    const file = path.join(folder, `${group.join(".")}_${plural}.yaml`);
    if (!fs.existsSync(file))
      throw new Error(
        `${file} is missing: fetch the Prometheus Operator's CRDs with \`make monitoring-crds\``,
      );
    return file;
  });
}
