import { existsSync } from "node:fs";
import { ConnectionReusingKubeConfig } from "../kube/client.js";
import { UsageError } from "./io.js";

/** A kubeconfig from a file the user named; a missing file is a usage error, not a stack trace. */
export function kubeConfigFromFile(path: string, flag = "--kubeconfig"): ConnectionReusingKubeConfig {
  if (!existsSync(path)) throw new UsageError(`${flag} ${path} does not exist`);
  const kubeConfig = new ConnectionReusingKubeConfig();
  kubeConfig.loadFromFile(path);
  return kubeConfig;
}
