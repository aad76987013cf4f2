/**
 * --metrics-cert-dir reloaded without a restart (controller-runtime's certwatcher): real TLS handshakes
 * against HttpEndpoints show which certificate is served after the folder changes the way a Secret
 * volume changes (the ..data symlink swapped to a new timestamped folder).
 */
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { Registry } from "prom-client";
import { HttpEndpoints } from "../../../src/controller/http-endpoints.js";
import {
  maximumServingCertificateFileBytes,
  readServingCertificate,
  ServingCertificateError,
  ServingCertificateFiles,
} from "../../../src/controller/serving-certificate-files.js";
import type { Logger } from "../../../src/logger.js";
import {
  createSelfSignedServingCertificate,
  type ServingCertificate,
} from "../../../src/pki/self-signed-serving.js";
import { waitFor } from "../../support/wait.js";

/** The SHA-256 fingerprint of the certificate a fresh TLS connection to `address` is served. */
function servedFingerprint(address: string): Promise<string> {
  const separator = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const socket = connect(
      {
        host: address.slice(0, separator),
        port: Number(address.slice(separator + 1)),
        rejectUnauthorized: false,
      },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    socket.on("error", reject);
  });
}

const fingerprintOf = (pair: ServingCertificate): string =>
  new X509Certificate(pair.certificatePem).fingerprint256;

/** A folder laid out as the kubelet lays out a Secret volume, updated the way it updates one. */
class SecretVolume {
  private generation = 0;
  constructor(readonly folder: string) {}

  /** Writes the files into a new ..<generation> folder, then swaps ..data to it in one rename. */
  publish(files: { "tls.crt": string; "tls.key": string }): void {
    const version = `..${++this.generation}`;
    mkdirSync(join(this.folder, version));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(this.folder, version, name), text);
    symlinkSync(version, join(this.folder, "..data_tmp"));
    renameSync(join(this.folder, "..data_tmp"), join(this.folder, "..data"));
    if (this.generation === 1)
      for (const name of ["tls.crt", "tls.key"]) symlinkSync(join("..data", name), join(this.folder, name));
  }
}

function recordingLogger(): Logger & { lines: { level: string; message: string; fields: object }[] } {
  const lines: { level: string; message: string; fields: object }[] = [];
  const record =
    (level: string) =>
    (message: string, fields: object = {}): void =>
      void lines.push({ level, message, fields });
  return {
    lines,
    debug: record("debug"),
    info: record("info"),
    warn: record("warn"),
    error: record("error"),
    flush: () => undefined,
  };
}

describe("ServingCertificateFiles: --metrics-cert-dir reloaded on change (real TLS connections)", function () {
  this.timeout(20_000);
  let folder: string;
  let first: ServingCertificate;
  let second: ServingCertificate;
  let third: ServingCertificate;

  before(async () => {
    const make = (name: string) => createSelfSignedServingCertificate(name, ["localhost"]);
    [first, second, third] = [await make("first"), await make("second"), await make("third")];
  });
  beforeEach(() => (folder = mkdtempSync(join(tmpdir(), "csr-signer-metrics-cert-"))));
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  it("serves a renewed pair to new connections after the Secret volume's symlink swap; a mismatched or half-written pair keeps the old one, logged once", async () => {
    const volume = new SecretVolume(folder);
    volume.publish({ "tls.crt": first.certificatePem, "tls.key": first.keyPem });
    const logger = recordingLogger();
    // A poll far longer than the test: the swap is seen through the folder watch.
    const files = new ServingCertificateFiles(folder, logger, 3_600_000);
    const endpoints = await HttpEndpoints.start(
      {
        metricsAddress: "127.0.0.1:0",
        metricsTls: files.current,
        onMetricsTlsChange: (listener) => files.onChange(listener),
      },
      { metrics: new Registry(), stalls: () => [], ready: () => true },
    );
    files.start();
    try {
      const [address] = endpoints.addresses();
      expect(await servedFingerprint(address!)).to.equal(fingerprintOf(first));

      volume.publish({ "tls.crt": second.certificatePem, "tls.key": second.keyPem });
      await waitFor("the renewed certificate served", async () =>
        (await servedFingerprint(address!)) === fingerprintOf(second) ? true : undefined,
      );
      expect(logger.lines.map((line) => [line.level, line.message])).to.deep.equal([
        ["info", "metrics serving certificate reloaded"],
      ]);

      // The third certificate with the second's key: refused, the second still served.
      volume.publish({ "tls.crt": third.certificatePem, "tls.key": second.keyPem });
      await waitFor("the refusal logged", async () =>
        logger.lines.some((line) => line.level === "warn") ? true : undefined,
      );
      expect(await servedFingerprint(address!)).to.equal(fingerprintOf(second));
      // Read again and again (the poll, more file events): still the second, and one warning only.
      expect(files.reload()).to.equal(false);
      expect(files.reload()).to.equal(false);
      expect(await servedFingerprint(address!)).to.equal(fingerprintOf(second));
      const warnings = logger.lines.filter((line) => line.level === "warn");
      expect(warnings).to.have.length(1);
      expect(warnings[0]!.message).to.equal(
        "metrics serving certificate not reloaded; still serving the previous one",
      );
      expect(warnings[0]!.fields).to.deep.include({ problem: "tls.key is not the key of tls.crt" });

      // Half written: the certificate cut off mid-PEM. Refused, logged (a new content), second served.
      volume.publish({ "tls.crt": third.certificatePem.slice(0, 200), "tls.key": third.keyPem });
      expect(files.reload()).to.equal(false);
      expect(await servedFingerprint(address!)).to.equal(fingerprintOf(second));
      expect(logger.lines.filter((line) => line.level === "warn")).to.have.length(2);
      expect(logger.lines.at(-1)!.fields)
        .to.have.property("problem")
        .that.matches(/^tls\.crt is no PEM certificate/);

      // The complete pair lands: taken.
      volume.publish({ "tls.crt": third.certificatePem, "tls.key": third.keyPem });
      await waitFor("the third certificate served", async () =>
        (await servedFingerprint(address!)) === fingerprintOf(third) ? true : undefined,
      );
      // Nothing logged carries key material.
      expect(JSON.stringify(logger.lines)).not.to.match(/PRIVATE KEY|BEGIN/);
    } finally {
      files.stop();
      await endpoints.close();
    }
  });

  it("reloads files rewritten in place (no symlink swap), key first: the mismatch between the writes is not taken", async () => {
    writeFileSync(join(folder, "tls.crt"), first.certificatePem);
    writeFileSync(join(folder, "tls.key"), first.keyPem);
    const files = new ServingCertificateFiles(folder, recordingLogger(), 50);
    const taken: string[] = [];
    files.onChange((pair) => taken.push(fingerprintOf(pair)));
    files.start();
    try {
      writeFileSync(join(folder, "tls.key"), second.keyPem);
      writeFileSync(join(folder, "tls.crt"), second.certificatePem);
      await waitFor("the replaced pair taken", async () => (taken.length > 0 ? true : undefined));
      expect(taken).to.deep.equal([fingerprintOf(second)]);
      expect(fingerprintOf(files.current)).to.equal(fingerprintOf(second));
    } finally {
      files.stop();
    }
  });

  it("refuses at start a pair that cannot serve (the controller then does not start)", () => {
    writeFileSync(join(folder, "tls.crt"), first.certificatePem);
    writeFileSync(join(folder, "tls.key"), second.keyPem);
    expect(() => readServingCertificate(folder))
      .to.throw(ServingCertificateError)
      .with.property("message", "tls.key is not the key of tls.crt");
    expect(() => new ServingCertificateFiles(folder, recordingLogger()))
      .to.throw(ServingCertificateError)
      .with.property("message", `--metrics-cert-dir ${folder}: tls.key is not the key of tls.crt`);
    writeFileSync(
      join(folder, "tls.key"),
      "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
    );
    expect(() => readServingCertificate(folder)).to.throw("tls.key is no PEM private key");
  });

  it("refuses a FIFO, /dev/zero and an oversized file without blocking or reading them (at start and on reload)", () => {
    // A FIFO with no writer: a blocking read would never return and freeze the event loop.
    execFileSync("mkfifo", [join(folder, "tls.key")]);
    writeFileSync(join(folder, "tls.crt"), first.certificatePem);
    expect(() => readServingCertificate(folder))
      .to.throw(ServingCertificateError)
      .with.property("message", "tls.key is not a regular file");
    unlinkSync(join(folder, "tls.key"));
    symlinkSync("/dev/zero", join(folder, "tls.key"));
    expect(() => readServingCertificate(folder)).to.throw("tls.key is not a regular file");
    unlinkSync(join(folder, "tls.key"));
    writeFileSync(join(folder, "tls.key"), first.keyPem);
    // A sparse file over the cap: refused from its size, never read into memory.
    truncateSync(join(folder, "tls.crt"), maximumServingCertificateFileBytes + 1);
    expect(() => new ServingCertificateFiles(folder, recordingLogger()))
      .to.throw(ServingCertificateError)
      .with.property(
        "message",
        `--metrics-cert-dir ${folder}: tls.crt is larger than ${maximumServingCertificateFileBytes} bytes (${maximumServingCertificateFileBytes + 1})`,
      );

    writeFileSync(join(folder, "tls.crt"), first.certificatePem);
    const logger = recordingLogger();
    const files = new ServingCertificateFiles(folder, logger);
    unlinkSync(join(folder, "tls.crt"));
    execFileSync("mkfifo", [join(folder, "tls.crt")]);
    expect(files.reload()).to.equal(false);
    expect(fingerprintOf(files.current)).to.equal(fingerprintOf(first));
    expect(
      logger.lines.map((line) => [line.level, (line.fields as { problem?: string }).problem]),
    ).to.deep.equal([["warn", "cannot read the files (tls.crt is not a regular file)"]]);
  });
});
