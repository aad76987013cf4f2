/**
 * The Secrets Signers read outside the controller's namespace (certificateAuthority.secretNamespace):
 * one list/watch per Secret, field-selected by name, started when a Signer first asks for it and
 * stopped when no Signer reads it. So the controller caches exactly those Secrets (never a tenant's
 * other Secrets), and a Role there may name them in resourceNames. A 403 (no Role yet) is the
 * Signer's condition naming the rule to add, not a log line; the list is retried with backoff.
 * Of each Secret the cache keeps only the data keys Signers read (tenant-secret-cache.ts).
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { apiErrorCode, apiErrorStatus } from "../kube/client.js";
import { ResilientInformer } from "../kube/informer.js";
import type { Logger } from "../logger.js";
import { parseServiceAccountUsername } from "../policy/signing-policy.js";
import { SecretUnavailableError } from "./ca-source.js";
import { cachedTenantSecret, caFileDataKeys, type TenantSecretObject } from "./tenant-secret-cache.js";

export interface TenantSecretWatchSettings {
  watchdogMs?: number | undefined;
  logger: Logger;
  /** A watched Secret changed, its first list answered, or its access changed: its Signers look again. */
  changed: (namespace: string, name: string) => void;
}

interface SecretWatch {
  readonly informer: ResilientInformer<TenantSecretObject>;
  /** The data keys its cache keeps: the CA files and every key a Signer asked for. */
  readonly dataKeys: ReadonlySet<string>;
  /** Whether a list succeeded once (the cache then says whether the Secret exists). */
  listed: boolean;
  /** The last list or watch failure was a 403 (with the API server's words), until access works. */
  forbidden: { verb: string; user: string | undefined } | undefined;
  /** Resolves when the first list answered, either way. */
  readonly firstAnswer: Promise<void>;
}

/** Base64 of a 64 KiB CA file is 87,384 bytes: longer values are never read, so never cached. */
export const maximumTenantSecretStringBytes = 96 * 1024;

export class TenantSecretWatches {
  private readonly watches = new Map<string, SecretWatch>();
  /** Set by stop(): a rebuild still in flight starts no new watch. */
  private stopped = false;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly settings: TenantSecretWatchSettings,
  ) {}

  /**
   * Secret `namespace/name` from its watch, started now when it is not watched yet, holding of its
   * data `dataKeys` (the keys the caller reads) and the CA files. Undefined when it does not exist;
   * throws SecretUnavailableError while the controller may not read it or the first list has not
   * answered. A key the watch did not keep yet restarts it keeping that key too (its cache lacks
   * it): only Signers' specs name keys, so that happens once per key a Signer starts reading.
   */
  get(namespace: string, name: string, dataKeys: readonly string[]): TenantSecretObject | undefined {
    const watch = this.watchKeeping(namespace, name, dataKeys);
    if (!watch) throw new SecretUnavailableError("SecretNotYetListed", "the controller is stopping");
    // A watch refused after its list succeeded recovers with no event: healthy says it is back.
    if (watch.forbidden && watch.informer.healthy) watch.forbidden = undefined;
    if (watch.forbidden)
      throw new SecretUnavailableError(
        "SecretAccessForbidden",
        missingSecretGrant(namespace, name, watch.forbidden.verb, watch.forbidden.user),
      );
    if (!watch.listed)
      throw new SecretUnavailableError(
        "SecretNotYetListed",
        `Secret ${namespace}/${name}: waiting for the first list of it to answer`,
      );
    return watch.informer.get(name, namespace);
  }

  /** Stops the watches of Secrets no Signer reads now ("namespace/name" keys). */
  retainOnly(keys: ReadonlySet<string>): void {
    for (const [key, watch] of this.watches)
      if (!keys.has(key)) {
        watch.informer.stop();
        this.watches.delete(key);
      }
  }

  /** Resolves when every watch started so far had its first list answered, or after `timeoutMs`. */
  async firstAnswers(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    });
    await Promise.race([Promise.all([...this.watches.values()].map((watch) => watch.firstAnswer)), timeout]);
    clearTimeout(timer);
  }

  /** "namespace/name" of the Secrets watched now (for tests). */
  watched(): string[] {
    return [...this.watches.keys()];
  }

  stop(): void {
    this.stopped = true;
    for (const watch of this.watches.values()) watch.informer.stop();
    this.watches.clear();
  }

  /** The watch of `namespace/name` keeping `dataKeys`: the current one, or one started (again) now. */
  private watchKeeping(
    namespace: string,
    name: string,
    dataKeys: readonly string[],
  ): SecretWatch | undefined {
    const key = `${namespace}/${name}`;
    const current = this.watches.get(key);
    if (current && dataKeys.every((dataKey) => current.dataKeys.has(dataKey))) return current;
    current?.informer.stop();
    this.watches.delete(key);
    if (this.stopped) return undefined;
    return this.start(namespace, name, new Set([...(current?.dataKeys ?? caFileDataKeys), ...dataKeys]));
  }

  private start(namespace: string, name: string, dataKeys: ReadonlySet<string>): SecretWatch {
    const { logger, changed } = this.settings;
    let answered!: () => void;
    const firstAnswer = new Promise<void>((resolve) => (answered = resolve));
    const informer = new ResilientInformer<TenantSecretObject>(this.kubeConfig, {
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`,
      fieldSelector: `metadata.name=${name}`,
      pageSize: 1,
      // A tenant may write up to 1 MiB into the Secret: what is read (CA files up to 64 KiB, PINs and
      // passphrases up to 4 KiB) fits below this; a longer value is cut before parsing (read as too large).
      maxStringBytes: maximumTenantSecretStringBytes,
      // Of the rest, only the data keys read and the metadata the informer compares are cached.
      transform: (secret) => cachedTenantSecret(secret, dataKeys),
      watchdogMs: this.settings.watchdogMs ?? 90_000,
      logger: (message, fields) => logger.warn(message, fields),
      onFailure: (error) => {
        answered();
        if (apiErrorCode(error) !== 403) return false; // logged by the informer, retried with backoff
        const before = watch.forbidden;
        watch.forbidden = forbiddenBy(error, watch.listed ? "watch" : "list");
        if (!before) {
          // Once per change of access, not per retry; the Signer's condition carries the rule.
          logger.warn("may not read a Signer's Secret; see the Signer's condition", {
            secret: `${namespace}/${name}`,
          });
          changed(namespace, name);
        }
        return true;
      },
    });
    const watch: SecretWatch = { informer, dataKeys, listed: false, forbidden: undefined, firstAnswer };
    this.watches.set(`${namespace}/${name}`, watch);
    informer.on(() => changed(namespace, name));
    void informer.start().then(() => {
      answered();
      watch.listed = true;
      watch.forbidden = undefined;
      changed(namespace, name);
    });
    return watch;
  }
}

/** The verb the API server refused and the user it named ("User \"x\" cannot list resource ..."). */
function forbiddenBy(error: unknown, verb: string): { verb: string; user: string | undefined } {
  const message = apiErrorStatus(error)?.message ?? "";
  const match = /User "([^"]+)" cannot (\w+) resource/.exec(message);
  return { verb: match?.[2] ?? verb, user: match?.[1] };
}

/**
 * "the controller may not list Secret foo/foo-cacerts; add in namespace foo a Role with the rule
 * {...} and a RoleBinding of it to ServiceAccount csr-signer/csr-signer": spelled out whole, like
 * the missing signer grants (src/kube/signer-grants.ts), so the operator can paste it.
 */
function missingSecretGrant(namespace: string, name: string, verb: string, user: string | undefined): string {
  const serviceAccount = parseServiceAccountUsername(user ?? "");
  const subject = serviceAccount
    ? `ServiceAccount ${serviceAccount.namespace}/${serviceAccount.serviceAccount}`
    : user
      ? `User "${user}"`
      : "the controller's ServiceAccount";
  return (
    `the controller may not ${verb} Secret ${namespace}/${name} (certificateAuthority.secretNamespace); ` +
    `add in namespace ${namespace} a Role with the rule {apiGroups: [""], resources: ["secrets"], ` +
    `resourceNames: ["${name}"], verbs: ["list", "watch"]} and a RoleBinding of it to ${subject} ` +
    `(csr-signer tenant add --ca-in-tenant-namespace makes both)`
  );
}
