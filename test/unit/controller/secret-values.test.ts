import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import {
  maximumSecretValueBytes,
  readSecretValue,
  SecretValueError,
} from "../../../src/controller/secret-values.js";
import { thrownBy } from "../../support/errors.js";

describe("readSecretValue (PIN and passphrase sources)", () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(tmpdir(), "secret-values-"))));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const noSecrets = () => undefined;

  it("drops one trailing newline, keeps everything else, and names the source (never the value) in errors", () => {
    const file = path.join(dir, "pin");
    writeFileSync(file, " 12 34 \r\n");
    expect(readSecretValue({ file }, "ns", noSecrets)).to.equal(" 12 34 ");
    writeFileSync(file, "\n");
    expect(thrownBy(SecretValueError, () => readSecretValue({ file }, "ns", noSecrets)).message).to.equal(
      `file ${file} is empty`,
    );
    writeFileSync(file, "x".repeat(maximumSecretValueBytes + 1));
    expect(thrownBy(SecretValueError, () => readSecretValue({ file }, "ns", noSecrets)).message).to.include(
      "is larger than 4096 bytes",
    );
    const secret = (value: string) => () => ({ data: { pin: Buffer.from(value).toString("base64") } });
    const source = { secret: { name: "hsm", key: "pin" } };
    expect(readSecretValue(source, "ns", secret("5678\n"))).to.equal("5678");
    const tooLarge = thrownBy(SecretValueError, () =>
      readSecretValue(source, "ns", secret("y".repeat(maximumSecretValueBytes + 1))),
    );
    expect(tooLarge.message).to.equal("Secret ns/hsm key pin is larger than 4096 bytes");
    expect(tooLarge.message).not.to.include("yyyy");
    expect(
      thrownBy(SecretValueError, () =>
        readSecretValue({ secret: { name: "hsm", key: "other" } }, "ns", secret("1")),
      ).message,
    ).to.equal("Secret ns/hsm key other: the Secret has no such key");
  });

  it("refuses a device, a FIFO or a folder as a PIN file without reading it (no OOM, no frozen loop)", () => {
    const fifo = path.join(dir, "fifo");
    execFileSync("mkfifo", [fifo]); // no writer: a blocking open or read would never return
    for (const file of ["/dev/zero", fifo, dir])
      expect(
        thrownBy(SecretValueError, () => readSecretValue({ file }, "ns", noSecrets)).message,
        file,
      ).to.equal(`file ${file} is not a regular file (a device, FIFO or folder is never read)`);
  });
});
