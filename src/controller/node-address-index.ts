/**
 * Which Nodes have a given name or address, kept from Node informer events so that the
 * kubelet-serving approver can deny a SAN that belongs to another Node without scanning every Node
 * per request, plus each Node's address sets as decisions compare them (computed once per update,
 * not per CSR). Memory is proportional to the Node cache it mirrors, and at most
 * maximumCountedNodeAddresses addresses of a Node count.
 */
import {
  countedNodeAddresses,
  extraDnsNames,
  nodeAddressKey,
  nodeAddressSets,
  type NodeAddressSets,
  type NodeFacts,
} from "../policy/kubelet-approval.js";

export interface IndexedNode {
  metadata?: { name?: string; uid?: string; resourceVersion?: string };
  status?: { addresses?: NodeFacts["addresses"] };
}

/**
 * What the Node cache keeps of a Node: its identity and the addresses that count, nothing else. A
 * kubelet writes its own Node status (images, conditions, annotations up to etcd's object limit),
 * and the cache need not hold that for every Node.
 */
export function cachedNode(node: IndexedNode): IndexedNode {
  const { name, uid, resourceVersion } = node.metadata ?? {};
  const addresses = node.status?.addresses;
  return {
    metadata: { name, uid, resourceVersion },
    ...(addresses
      ? {
          status: {
            addresses: countedNodeAddresses({ addresses }).map(({ type, address }) => ({ type, address })),
          },
        }
      : {}),
  };
}

export class NodeAddressIndex {
  /** key (nodeAddressKey) -> names of the Nodes having it. */
  private readonly nodesByKey = new Map<string, Set<string>>();
  /** Node name -> the keys indexed for it, so an update or delete removes exactly those. */
  private readonly keysByNode = new Map<string, readonly string[]>();
  private readonly addressSetsByNode = new Map<string, NodeAddressSets>();

  /** extraDnsPatterns: --kubelet-serving-extra-dns, whose names belong to the Node they are expanded for. */
  constructor(private readonly extraDnsPatterns: readonly string[] = []) {}

  /**
   * Indexes a Node's name, its extra DNS names and every counted address (of any type), replacing
   * its previous entries. True when that changed anything a decision reads (most Node updates are
   * kubelet heartbeats that change no address).
   */
  upsert(node: IndexedNode): boolean {
    const name = node.metadata?.name;
    if (!name) return false;
    const previousKeys = this.keysByNode.get(name);
    const previousSets = this.addressSetsByNode.get(name);
    this.remove(name);
    const facts = { addresses: node.status?.addresses ?? [] };
    const keys = [
      ...new Set(
        [
          name,
          ...extraDnsNames(name, this.extraDnsPatterns),
          ...countedNodeAddresses(facts).map((a) => a.address),
        ].map(nodeAddressKey),
      ),
    ];
    for (const key of keys) {
      let names = this.nodesByKey.get(key);
      if (!names) this.nodesByKey.set(key, (names = new Set()));
      names.add(name);
    }
    this.keysByNode.set(name, keys);
    const sets = nodeAddressSets(facts);
    this.addressSetsByNode.set(name, sets);
    return !sameKeys(previousKeys, keys) || !sameAddressSets(previousSets, sets);
  }

  delete(node: IndexedNode): void {
    const name = node.metadata?.name;
    if (name) this.remove(name);
  }

  /** Names of the Nodes whose name, extra DNS name or an address is `key`. */
  nodesWithAddress(key: string): readonly string[] {
    return [...(this.nodesByKey.get(key) ?? [])];
  }

  /** The Node's counted addresses as decisions compare them; undefined for an unknown Node. */
  get(name: string): NodeAddressSets | undefined {
    return this.addressSetsByNode.get(name);
  }

  /** How many keys are indexed for the Node (its name, extra names and counted addresses). */
  keyCount(name: string): number {
    return this.keysByNode.get(name)?.length ?? 0;
  }

  private remove(name: string): void {
    for (const key of this.keysByNode.get(name) ?? []) {
      const names = this.nodesByKey.get(key);
      names?.delete(name);
      if (names?.size === 0) this.nodesByKey.delete(key);
    }
    this.keysByNode.delete(name);
    this.addressSetsByNode.delete(name);
  }
}

function sameKeys(previous: readonly string[] | undefined, keys: readonly string[]): boolean {
  return (
    previous !== undefined && previous.length === keys.length && previous.every((key, i) => key === keys[i])
  );
}

function sameAddressSets(previous: NodeAddressSets | undefined, sets: NodeAddressSets): boolean {
  const same = (a: ReadonlySet<string>, b: ReadonlySet<string>): boolean =>
    a.size === b.size && [...a].every((item) => b.has(item));
  return (
    previous !== undefined &&
    same(previous.dnsNames, sets.dnsNames) &&
    same(previous.ipAddresses, sets.ipAddresses)
  );
}
