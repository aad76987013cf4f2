import { expect } from "chai";
import { KubeConfig } from "@kubernetes/client-node";
import { ResilientInformer, type ListResult } from "../../../src/kube/informer.js";

interface Item {
  metadata: { name: string; uid: string; resourceVersion: string };
}

/** An informer whose lists answer `items()` (no watch is started: relist is called as run() does). */
function informerListing(items: () => Item[]): {
  relist: () => Promise<void>;
  events: string[];
  informer: ResilientInformer<Item>;
} {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: "c", server: "https://127.0.0.1:1", skipTLSVerify: true }],
    users: [{ name: "u" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  const informer = new ResilientInformer<Item>(kubeConfig, {
    path: "/apis/example.test/v1/items",
    list: async (): Promise<ListResult<Item>> => ({ items: items(), metadata: { resourceVersion: "100" } }),
  });
  const events: string[] = [];
  informer.on((event, item) => events.push(`${event} ${item.metadata.name} ${item.metadata.uid}`));
  const relist = (): Promise<void> => (informer as unknown as { relist(): Promise<void> }).relist();
  return { relist, events, informer };
}

describe("ResilientInformer relist: an object deleted and created again under its name while no watch ran", () => {
  it("is told as the old object's deletion, then the new one, so no state kept per name carries over", async () => {
    let items: Item[] = [{ metadata: { name: "a", uid: "uid-1", resourceVersion: "1" } }];
    const { relist, events, informer } = informerListing(() => items);
    await relist();
    items = [{ metadata: { name: "a", uid: "uid-2", resourceVersion: "7" } }];
    await relist();
    expect(events).to.deep.equal(["upsert a uid-1", "delete a uid-1", "upsert a uid-2"]);
    expect(informer.get("a")?.metadata.uid).to.equal("uid-2");
  });

  it("the same object changed is one update, unchanged is nothing", async () => {
    let items: Item[] = [{ metadata: { name: "a", uid: "uid-1", resourceVersion: "1" } }];
    const { relist, events } = informerListing(() => items);
    await relist();
    await relist();
    items = [{ metadata: { name: "a", uid: "uid-1", resourceVersion: "2" } }];
    await relist();
    expect(events).to.deep.equal(["upsert a uid-1", "upsert a uid-1"]);
  });
});
