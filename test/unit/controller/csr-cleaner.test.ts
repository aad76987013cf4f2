import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { cachedCsr } from "../../../src/controller/csr-cache.js";
import { CsrCleaner } from "../../../src/controller/csr-cleaner.js";
import type { CsrObject } from "../../../src/controller/csr-object.js";
import { ControllerMetrics } from "../../../src/controller/metrics.js";
import { defaultCleanupPeriods } from "../../../src/policy/csr-cleanup.js";
import { opensslSelfSignedCertificate } from "../../support/openssl.js";
import { silentLogger } from "../../support/silent-logger.js";

const signerName = "example.com/ours";

/** A one-day certificate from openssl, as status.certificate holds it (base64 of the PEM). */
function oneDayCertificate(): { statusCertificate: string; notAfter: Date } {
  const pem = opensslSelfSignedCertificate(1);
  return {
    statusCertificate: Buffer.from(pem).toString("base64"),
    notAfter: new X509Certificate(pem).validToDate,
  };
}

function issuedCsr(name: string, certificate: string, approvedAt: Date): CsrObject {
  return {
    metadata: { name, uid: `uid-${name}`, creationTimestamp: approvedAt.toISOString() },
    spec: { signerName, usages: ["client auth"] },
    status: {
      conditions: [{ type: "Approved", status: "True", lastUpdateTime: approvedAt.toISOString() }],
      certificate,
    },
  };
}

/** One sweep at `now` over `csrs`; the names deleted. */
async function sweep(csrs: CsrObject[], now: Date): Promise<string[]> {
  const deleted: string[] = [];
  const cleaner = new CsrCleaner(
    defaultCleanupPeriods,
    (name) => name === signerName,
    () => csrs,
    async (name) => void deleted.push(name),
    new ControllerMetrics(),
    silentLogger,
    () => now,
  );
  await cleaner.sweep();
  return deleted;
}

describe("CsrCleaner on cached CSRs (the cache keeps our leaf's NotAfter, not the chain)", () => {
  const { statusCertificate, notAfter } = oneDayCertificate();
  const approvedAt = new Date(notAfter.getTime() - 24 * 3600_000);
  const ours = () => true;

  it("deletes an issued CSR once its certificate expired, from the cached copy and from a whole one alike", async () => {
    const whole = issuedCsr("whole", statusCertificate, approvedAt);
    const cached = cachedCsr(issuedCsr("cached", statusCertificate, approvedAt), ours);
    expect(cached.status?.certificate).to.equal(undefined);
    expect(await sweep([whole, cached], new Date(notAfter.getTime() + 1000))).to.deep.equal([
      "whole",
      "cached",
    ]);
  });

  it("keeps it before the expiry while within the issued period, and deletes it after that period", async () => {
    const cached = cachedCsr(issuedCsr("cached", statusCertificate, approvedAt), ours);
    const justApproved = new Date(approvedAt.getTime() + 60_000);
    expect(await sweep([cached], justApproved)).to.deep.equal([]);
    const anHourLater = new Date(approvedAt.getTime() + defaultCleanupPeriods.finishedSeconds * 1000);
    expect(await sweep([cached], anHourLater)).to.deep.equal(["cached"]);
  });

  it("an unreadable certificate counts as issued, never as expired", async () => {
    const cached = cachedCsr(issuedCsr("garbled", "Q0VSVA==", approvedAt), ours);
    expect(cached.status?.certificateOmitted).to.deep.equal({ reason: "Ours", notAfterMs: undefined });
    expect(await sweep([cached], new Date(approvedAt.getTime() + 60_000))).to.deep.equal([]);
    expect(await sweep([cached], new Date(approvedAt.getTime() + 3600_000))).to.deep.equal(["garbled"]);
  });
});
