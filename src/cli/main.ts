#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  caInspect,
  caInspectHelp,
  caIntermediate,
  caIntermediateHelp,
  caRoot,
  caRootHelp,
} from "./ca-commands.js";
import { caRequest, caRequestHelp, caSignIntermediate, caSignIntermediateHelp } from "./ca-hsm-commands.js";
import { controllerCommand, controllerHelp } from "./controller-command.js";
import { processIo, UsageError, type CommandIo } from "./io.js";
import { istioMeshConfig, istioMeshConfigHelp } from "./istio-command.js";
import { signCommand, signHelp } from "./sign-command.js";
import { versionText } from "./version.js";

const topHelp = `csr-signer: a Kubernetes CertificateSigningRequest signer.

Usage: csr-signer <command> [options]   (csr-signer <command> --help for details)

Controller:
  controller        run the signer against a cluster
  istio mesh-config print meshConfig caCertificates for the cluster's Signers

Offline CA toolkit:
  ca root           create an offline root CA
  ca intermediate   create a per-cluster intermediate CA as Istio cacerts files
  ca inspect        show a CA folder or PEM chain, with warnings
  ca request        generate a CA key in a PKCS#11 token (HSM) and write its intermediate request
  ca sign-intermediate  sign an intermediate's request with the offline root (cacerts files, no key)
  sign              issue a certificate for a CSR file with a CA folder

  --version         print the version, the commit it was built from and the Node version
`;

type Command = { run: (args: string[], io: CommandIo) => Promise<void>; help: string };

const commands: Record<string, Command> = {
  "ca root": { run: caRoot, help: caRootHelp },
  "ca intermediate": { run: caIntermediate, help: caIntermediateHelp },
  "ca inspect": { run: caInspect, help: caInspectHelp },
  "ca request": { run: caRequest, help: caRequestHelp },
  "ca sign-intermediate": { run: caSignIntermediate, help: caSignIntermediateHelp },
  sign: { run: signCommand, help: signHelp },
  controller: { run: controllerCommand, help: controllerHelp },
  "istio mesh-config": { run: istioMeshConfig, help: istioMeshConfigHelp },
};

/**
 * Runs the CLI. Every failure becomes one line on stderr and a non-zero exit code (2 for usage
 * mistakes, 1 otherwise), never a stack trace.
 */
export async function runCli(argv: string[], io: CommandIo): Promise<void> {
  if (argv[0] === "--version" || argv[0] === "version") {
    io.stdout(versionText());
    return;
  }
  const name =
    argv[0] === "ca" || argv[0] === "istio" ? `${argv[0]} ${argv[1] ?? ""}`.trim() : (argv[0] ?? "");
  const rest = argv.slice(name.split(" ").length);
  const command = commands[name];
  if (!command) {
    const helpWords = ["", "--help", "-h", "help"];
    // "csr-signer ca --help" or "csr-signer istio": the group's commands are in the top help.
    const group = name.split(" ")[0]!;
    if (
      helpWords.includes(name) ||
      ((group === "ca" || group === "istio") && helpWords.includes(argv[1] ?? ""))
    ) {
      io.stdout(topHelp);
      return;
    }
    io.stderr(`csr-signer: unknown command "${name}"\n\n${topHelp}`);
    io.setExitCode(2);
    return;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout(command.help);
    return;
  }
  try {
    await command.run(rest, io);
  } catch (error) {
    const usage =
      error instanceof UsageError || (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`csr-signer ${name}: ${message.split("\n")[0]}\n`);
    io.setExitCode(usage ? 2 : 1);
  }
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  await runCli(process.argv.slice(2), processIo());
  // The command is over: exit now with its code, whatever handle a library may still hold open.
  process.exit();
}
