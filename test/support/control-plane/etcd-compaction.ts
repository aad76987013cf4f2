/**
 * Compacting etcd's history through its v3 JSON gateway, so that a restarted kube-apiserver answers
 * every resourceVersion a client saw before with 410 Gone (the informer must relist).
 */

/** Advances etcd's revision past everything seen so far (a put of `markerKey`), then compacts all history before it. */
export async function compactEtcdHistory(etcdUrl: string, markerKey: string): Promise<void> {
  const gateway = async (api: string, body: unknown): Promise<{ header?: { revision?: string } }> => {
    const response = await fetch(`${etcdUrl}/v3/kv/${api}`, {
      method: "POST",
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    if (!response.ok) throw new Error(`etcd ${api}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as { header?: { revision?: string } };
  };
  const base64 = (text: string): string => Buffer.from(text).toString("base64");
  // Outside /registry: kube-apiserver never reads it.
  const put = await gateway("put", { key: base64(markerKey), value: base64("bump") });
  await gateway("compaction", { revision: put.header?.revision, physical: true });
}
