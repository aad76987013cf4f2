/**
 * TenantSecretWatches on the real API server: the watch of a tenant's Secret caches only the data
 * keys Signers read (the CA files, a passphrase's key when asked for) and the metadata the informer
 * compares, never managedFields, labels, annotations or the tenant's other keys; a key asked for
 * later restarts the watch so it is there, and updates keep coming through the transform.
 */
import { expect } from "chai";
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { SecretUnavailableError } from "../../src/controller/ca-source.js";
import { caFileDataKeys } from "../../src/controller/tenant-secret-cache.js";
import { TenantSecretWatches } from "../../src/controller/tenant-secret-watches.js";
import { uniqueName } from "../support/identities.js";
import { silentLogger } from "../support/silent-logger.js";
import { thrownBy } from "../support/errors.js";
import { waitFor } from "../support/wait.js";
import { controlPlane } from "./setup.js";

const base64 = (text: string): string => Buffer.from(text).toString("base64");

describe("TenantSecretWatches: what the cache of a tenant's Secret holds", function () {
  this.timeout(60_000);
  let admin: KubeConfig;
  let watches: TenantSecretWatches | undefined;
  const namespace = uniqueName("tenant-watch");
  const name = "foo-cacerts";

  before(async () => {
    admin = controlPlane().kubeConfig();
    await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
  });

  after(async () => {
    watches?.stop();
    await admin.makeApiClient(CoreV1Api).deleteNamespace({ name: namespace });
  });

  it("keeps the CA files and, once a Signer asks, the passphrase key; never managedFields, labels or other keys", async () => {
    const core = admin.makeApiClient(CoreV1Api);
    const data = {
      "ca-cert.pem": base64("certificate"),
      "ca-key.pem": base64("key"),
      passphrase: base64("correct horse"),
      "unread.bin": base64("u".repeat(40_000)),
    };
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name, labels: { app: "tenant" }, annotations: { note: "n".repeat(10_000) } },
        type: "Opaque",
        data,
      },
    });
    const stored = await core.readNamespacedSecret({ namespace, name });
    expect(stored.metadata?.managedFields).to.have.length.above(0); // the API server wrote them

    const changed: string[] = [];
    watches = new TenantSecretWatches(admin, {
      logger: silentLogger,
      changed: (ns, secretName) => changed.push(`${ns}/${secretName}`),
    });
    const caFiles = [...caFileDataKeys];
    expect(thrownBy(SecretUnavailableError, () => watches!.get(namespace, name, caFiles)).reason).to.equal(
      "SecretNotYetListed",
    );
    await watches.firstAnswers(20_000);
    expect(watches.get(namespace, name, caFiles)).to.deep.equal({
      metadata: { name, namespace, resourceVersion: stored.metadata!.resourceVersion },
      data: { "ca-cert.pem": data["ca-cert.pem"], "ca-key.pem": data["ca-key.pem"] },
    });

    // A Signer now reads the passphrase from this Secret: the cache lacks it, so the watch lists again.
    expect(
      thrownBy(SecretUnavailableError, () => watches!.get(namespace, name, ["passphrase"])).reason,
    ).to.equal("SecretNotYetListed");
    expect(watches.watched()).to.deep.equal([`${namespace}/${name}`]);
    await watches.firstAnswers(20_000);
    const withPassphrase = watches.get(namespace, name, ["passphrase"]);
    expect(withPassphrase?.data).to.deep.equal({
      "ca-cert.pem": data["ca-cert.pem"],
      "ca-key.pem": data["ca-key.pem"],
      passphrase: data.passphrase,
    });
    // Keys it keeps already: the same watch answers, no new list.
    expect(watches.get(namespace, name, caFiles)).to.equal(withPassphrase);

    // A tenant's update comes through its watch, cut the same way.
    changed.length = 0;
    await core.replaceNamespacedSecret({
      namespace,
      name,
      body: {
        metadata: { name, labels: { app: "tenant", more: "x" } },
        type: "Opaque",
        data: { ...data, passphrase: base64("new horse"), "extra.bin": base64("e".repeat(1000)) },
      },
    });
    const updated = await waitFor("the update in the cache", async () => {
      const secret = watches!.get(namespace, name, caFiles);
      return secret?.data?.passphrase === base64("new horse") ? secret : undefined;
    });
    expect(changed).to.include(`${namespace}/${name}`);
    expect(Object.keys(updated.data!).sort()).to.deep.equal(["ca-cert.pem", "ca-key.pem", "passphrase"]);
    expect(Object.keys(updated.metadata!).sort()).to.deep.equal(["name", "namespace", "resourceVersion"]);
  });
});
