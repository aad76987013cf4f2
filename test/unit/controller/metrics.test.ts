import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "chai";
import { ControllerMetrics } from "../../../src/controller/metrics.js";

const packageVersion = (
  JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "..", "package.json"), "utf8")) as {
    version: string;
  }
).version;

async function buildInfoLine(metrics: ControllerMetrics): Promise<string | undefined> {
  return (await metrics.registry.metrics())
    .split("\n")
    .find((line) => line.startsWith("csr_signer_build_info{"));
}

describe("csr_signer_build_info", () => {
  it("reports the version and commit the controller is given (the CLI passes its --version build info)", async () => {
    expect(await buildInfoLine(new ControllerMetrics({ version: "9.8.7", commit: "0123456789ab" }))).to.equal(
      `csr_signer_build_info{version="9.8.7",commit="0123456789ab",node_version="${process.version}"} 1`,
    );
  });

  it('without build info (a controller started from a test): package.json\'s version, commit "unknown"', async () => {
    expect(await buildInfoLine(new ControllerMetrics())).to.equal(
      `csr_signer_build_info{version="${packageVersion}",commit="unknown",node_version="${process.version}"} 1`,
    );
  });
});

describe("csr_signer_events_dropped_total", () => {
  it("counts each drop the Event recorder reports under its cause, and nothing else in its labels", async () => {
    const metrics = new ControllerMetrics();
    metrics.eventDropped("tenant");
    metrics.eventDropped("tenant");
    metrics.eventDropped("repeat");
    metrics.eventDropped("requester");
    const lines = (await metrics.registry.metrics())
      .split("\n")
      .filter((line) => line.startsWith("csr_signer_events_dropped_total{"));
    expect(lines).to.deep.equal([
      'csr_signer_events_dropped_total{cause="tenant"} 2',
      'csr_signer_events_dropped_total{cause="repeat"} 1',
      'csr_signer_events_dropped_total{cause="requester"} 1',
    ]);
  });
});
