import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { readCertificateAuthorityFolder } from "../../../src/pki/ca-material-files.js";
import { CertificateAuthorityError } from "../../../src/pki/certificate-authority.js";
import { thrownBy } from "../../support/errors.js";
import { makeTestCertificateAuthority } from "../../support/pki.js";

describe("readCertificateAuthorityFolder", function () {
  this.timeout(30_000);

  it("reads a mounted folder from the one version its ..data link names, never a mix of two", async () => {
    const folder = mkdtempSync(join(tmpdir(), "csr-signer-ca-folder-"));
    try {
      const older = (await makeTestCertificateAuthority({ name: "older" })).files;
      const current = (await makeTestCertificateAuthority({ name: "current" })).files;
      mkdirSync(join(folder, "..v2"));
      for (const [name, content] of Object.entries(current))
        writeFileSync(join(folder, "..v2", name), content);
      symlinkSync("..v2", join(folder, "..data"));
      // Top-level names the way a half-finished swap could leave them: plain files of the older version.
      for (const [name, content] of Object.entries(older)) writeFileSync(join(folder, name), content);
      const read = readCertificateAuthorityFolder(folder);
      for (const name of Object.keys(current))
        expect(Buffer.from(read[name]!).toString(), name).to.equal(current[name]);
      // A plain folder (no ..data) is read as it is.
      rmSync(join(folder, "..data"));
      expect(Buffer.from(readCertificateAuthorityFolder(folder)["ca-cert.pem"]!).toString()).to.equal(
        older["ca-cert.pem"],
      );
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it("refuses a CA file that is not a regular file (a FIFO, a device) without reading it: MissingFile", () => {
    const folder = mkdtempSync(join(tmpdir(), "csr-signer-ca-fifo-"));
    try {
      execFileSync("mkfifo", [join(folder, "ca-cert.pem")]); // a blocking read would freeze the loop
      symlinkSync("/dev/zero", join(folder, "ca-key.pem"));
      const error = thrownBy(CertificateAuthorityError, () => readCertificateAuthorityFolder(folder));
      expect(error.reason).to.equal("MissingFile");
      expect(error.message).to.match(/^ca-(cert|key)\.pem is not a regular file/);
      rmSync(join(folder, "ca-cert.pem"));
      expect(
        thrownBy(CertificateAuthorityError, () => readCertificateAuthorityFolder(folder)).message,
      ).to.match(/^ca-key\.pem is not a regular file/);
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
