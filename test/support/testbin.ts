/**
 * Where the test binaries live (kube-apiserver, kubectl, etcd, the Go x509-oracle, bench-sign's
 * x509-sign, Istio's pilot-discovery and pilot-agent, helm, Prometheus' promtool): the folder in $KUBE_BIN_DIR, $ETCD_BIN_DIR,
 * $X509_ORACLE_BIN_DIR, $X509_SIGN_BIN_DIR, $ISTIO_BIN_DIR, $HELM_BIN_DIR or $PROMTOOL_BIN_DIR, else the one `hack/testbin/build.sh
 * --print-dir` names. Only asks; building is `make testbin`'s job, never the tests'.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repositoryRoot = fileURLToPath(new URL("../../", import.meta.url));
export const buildScript = path.join(repositoryRoot, "hack/testbin/build.sh");

export type TestBinaryFolder =
  | "KUBE_BIN_DIR"
  | "ETCD_BIN_DIR"
  | "X509_ORACLE_BIN_DIR"
  | "X509_SIGN_BIN_DIR"
  | "ISTIO_BIN_DIR"
  | "HELM_BIN_DIR"
  | "PROMTOOL_BIN_DIR";

let printedFolders: Map<string, string> | undefined;

function folderOf(variable: TestBinaryFolder): string | undefined {
  const fromEnvironment = process.env[variable];
  if (fromEnvironment) return fromEnvironment;
  printedFolders ??= new Map(
    execFileSync(buildScript, ["--print-dir"], { encoding: "utf8" })
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1).trim()]),
  );
  return printedFolders.get(variable) || undefined;
}

/**
 * The path of test binary `name` in the folder `variable` names (`folder` overrides it). Throws,
 * naming `make testbin`, when there is no such folder or the binary is not executable.
 */
export function testBinary(variable: TestBinaryFolder, name: string, folder?: string): string {
  const directory = folder || folderOf(variable);
  if (directory === undefined) {
    throw new Error(`could not find the test binaries: ${buildScript} --print-dir printed no ${variable}`);
  }
  const binary = path.join(directory, name);
  try {
    fs.accessSync(binary, fs.constants.X_OK);
  } catch {
    throw new Error(`${binary} is missing: build the test binaries first with \`make testbin\``);
  }
  return binary;
}
