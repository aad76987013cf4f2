/**
 * The metrics server's certificate from --metrics-cert-dir (tls.crt, tls.key), reloaded when the files
 * change, as controller-runtime's certwatcher does: no restart when cert-manager renews the Secret.
 * A Secret volume updates by swapping the ..data symlink, so the folder is watched (fs.watch) and, as
 * a bound for mounts where inotify says nothing (or is out of watches), polled. A new pair is taken
 * only when the certificate parses and matches the key: a half-written or mismatched pair keeps the
 * pair in use and is logged once (per content), never with the key.
 */
import { createHash, createPrivateKey, X509Certificate } from "node:crypto";
import { watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { describeError } from "../kube/client.js";
import type { Logger } from "../logger.js";
import { readBoundedFile } from "../pki/bounded-file.js";
import type { ServingCertificate } from "../pki/self-signed-serving.js";

/** How often the files are read when no file event came (controller-runtime's certwatcher: 10 s). */
const defaultServingCertificatePollMs = 10_000;
/** Far above any certificate chain or key (a few KiB); a bigger file is refused unread. */
export const maximumServingCertificateFileBytes = 1024 * 1024;
/** File events come in bursts (a symlink swap is several renames): read once, this long after the first. */
const settleMs = 100;

/** A tls.crt/tls.key pair that cannot serve; the message names the file and the problem, never key bytes. */
export class ServingCertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ServingCertificateError";
  }
}

/** Reads folder/tls.crt and folder/tls.key; throws ServingCertificateError unless they are a matching pair. */
export function readServingCertificate(folder: string): ServingCertificate {
  return checkServingCertificate({
    certificatePem: readServingFile(folder, "tls.crt"),
    keyPem: readServingFile(folder, "tls.key"),
  });
}

/**
 * One file of the pair, bounded and non-blocking (bounded-file.ts): a FIFO must not freeze the event
 * loop, nor /dev/zero or a huge file fill the memory. ServingCertificateError for those; the system
 * error (ENOENT, EACCES) when it cannot be opened.
 */
function readServingFile(folder: string, name: "tls.crt" | "tls.key"): string {
  const read = readBoundedFile(join(folder, name), maximumServingCertificateFileBytes);
  if (read.kind === "notRegularFile") throw new ServingCertificateError(`${name} is not a regular file`);
  if (read.kind === "tooLarge")
    throw new ServingCertificateError(
      `${name} is larger than ${maximumServingCertificateFileBytes} bytes (${read.bytes})`,
    );
  return read.bytes.toString("utf8");
}

/** The pair itself when the certificate parses and the key is its key; else ServingCertificateError. */
function checkServingCertificate(pair: ServingCertificate): ServingCertificate {
  const { certificatePem, keyPem } = pair;
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(certificatePem);
  } catch (error) {
    throw new ServingCertificateError(`tls.crt is no PEM certificate (${describeError(error)})`);
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(keyPem));
  } catch {
    // Node's message may quote the decoder's view of the input: say only which file failed.
    throw new ServingCertificateError("tls.key is no PEM private key");
  }
  if (!matches) throw new ServingCertificateError("tls.key is not the key of tls.crt");
  return pair;
}

export class ServingCertificateFiles {
  private pair: ServingCertificate;
  /** What was last refused, so one bad pair is logged once however often it is read. */
  private refusedDigest: string | undefined;
  private readonly listeners: ((pair: ServingCertificate) => void)[] = [];
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private pending: NodeJS.Timeout | undefined;

  /** Reads the pair now: a folder that cannot serve at start is an error (the controller does not start). */
  constructor(
    private readonly folder: string,
    private readonly logger: Logger,
    private readonly pollMs = defaultServingCertificatePollMs,
  ) {
    try {
      this.pair = readServingCertificate(folder);
    } catch (error) {
      // Said with the folder: at start this is the controller's exit message.
      if (error instanceof ServingCertificateError)
        throw new ServingCertificateError(`--metrics-cert-dir ${folder}: ${error.message}`);
      throw error;
    }
  }

  get current(): ServingCertificate {
    return this.pair;
  }

  /** Called with each new pair taken (not with refused ones). */
  onChange(listener: (pair: ServingCertificate) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    try {
      this.watcher = watch(this.folder, () => this.reloadSoon());
      // The folder replaced or unmounted: the poll below still reads it.
      this.watcher.on("error", (error) =>
        this.logger.warn("watching the metrics certificate folder failed; polling it", {
          folder: this.folder,
          error: describeError(error),
        }),
      );
    } catch (error) {
      // No inotify watch left (ENOSPC) or no such support: the poll below is the bound.
      this.logger.warn("cannot watch the metrics certificate folder; polling it", {
        folder: this.folder,
        error: describeError(error),
      });
    }
    this.poller = setInterval(() => this.reload(), this.pollMs);
    this.poller.unref();
  }

  stop(): void {
    this.watcher?.close();
    clearInterval(this.poller);
    clearTimeout(this.pending);
  }

  /** Reads the files; takes them when they changed and are a matching pair. Returns whether they were taken. */
  reload(): boolean {
    let certificatePem: string;
    let keyPem: string;
    try {
      certificatePem = readServingFile(this.folder, "tls.crt");
      keyPem = readServingFile(this.folder, "tls.key");
    } catch (error) {
      this.refuse(`cannot read the files (${describeError(error)})`, describeError(error));
      return false;
    }
    if (certificatePem === this.pair.certificatePem && keyPem === this.pair.keyPem) {
      this.refusedDigest = undefined;
      return false;
    }
    const digest = createHash("sha256").update(certificatePem).update("\0").update(keyPem).digest("hex");
    let pair: ServingCertificate;
    try {
      pair = checkServingCertificate({ certificatePem, keyPem });
    } catch (error) {
      this.refuse(error instanceof ServingCertificateError ? error.message : describeError(error), digest);
      return false;
    }
    this.pair = pair;
    this.refusedDigest = undefined;
    const fingerprint = new X509Certificate(pair.certificatePem).fingerprint256;
    this.logger.info("metrics serving certificate reloaded", { folder: this.folder, fingerprint });
    for (const listener of this.listeners) listener(pair);
    return true;
  }

  private reloadSoon(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.reload();
    }, settleMs);
    this.pending.unref();
  }

  private refuse(problem: string, digest: string): void {
    if (this.refusedDigest === digest) return;
    this.refusedDigest = digest;
    this.logger.warn("metrics serving certificate not reloaded; still serving the previous one", {
      folder: this.folder,
      problem,
    });
  }
}
