/**
 * The image name cannot drift: manifests/base and the chart's default name exactly the image `make
 * image` tags, localhost/csr-signer:<package.json version> (hack/image/release-image.sh). The image
 * test (test/image/image.test.ts) checks that the built image carries that tag.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { load as loadYaml } from "js-yaml";
import { repositoryRoot } from "../../support/testbin.js";

const read = (file: string): string => readFileSync(path.join(repositoryRoot, file), "utf8");
const version = (JSON.parse(read("package.json")) as { version: string }).version;
const releaseImage = execFileSync(path.join(repositoryRoot, "hack/image/release-image.sh"), {
  encoding: "utf8",
}).trim();

describe("the release image name (make image, manifests/base, the chart)", () => {
  it("is localhost/csr-signer:<package.json version>", () => {
    expect(releaseImage).to.equal(`localhost/csr-signer:${version}`);
  });

  it("is a tag `make image` builds (make's dry run passes it to hack/image/build.sh)", () => {
    const recipe = execFileSync("make", ["--no-print-directory", "-n", "image"], {
      cwd: repositoryRoot,
      encoding: "utf8",
    });
    const call = recipe.split("\n").find((line) => line.startsWith("hack/image/build.sh "));
    expect(call, recipe).to.not.equal(undefined);
    // build.sh <image> <node version> [tag]...: every word after the node version is a --tag.
    expect(call!.split(/\s+/).slice(3)).to.include(releaseImage);
  });

  it("is the image manifests/base's Deployment runs", () => {
    const deployment = loadYaml(read("manifests/base/deployment.yaml")) as {
      spec: { template: { spec: { containers: { name: string; image: string }[] } } };
    };
    expect(deployment.spec.template.spec.containers.map((c) => c.image)).to.deep.equal([releaseImage]);
  });

  it("is the chart's default image: image.repository with appVersion as the tag, no digest", () => {
    const chart = loadYaml(read("charts/csr-signer/Chart.yaml")) as { appVersion: string };
    const values = loadYaml(read("charts/csr-signer/values.yaml")) as {
      image: { repository: string; tag: string; digest: string };
    };
    expect(values.image.tag).to.equal("");
    expect(values.image.digest).to.equal("");
    expect(`${values.image.repository}:${chart.appVersion}`).to.equal(releaseImage);
  });
});
