/**
 * Which Nodes have a given name or address, kept from Node informer events so that the
 * kubelet-serving approver can deny a SAN that belongs to another Node without scanning every Node
 * per request. Memory is proportional to the Node cache it mirrors: one entry per distinct
 * name/address and one key list per Node.
 */
import { nodeAddressKey, type NodeFacts } from "../policy/kubelet-approval.js";

export interface IndexedNode {
  metadata?: { name?: string };
  status?: { addresses?: NodeFacts["addresses"] };
}

export class NodeAddressIndex {
  /** key (nodeAddressKey) -> names of the Nodes having it. */
  private readonly nodesByKey = new Map<string, Set<string>>();
  /** Node name -> the keys indexed for it, so an update or delete removes exactly those. */
  private readonly keysByNode = new Map<string, readonly string[]>();

  /** Indexes a Node's name and every address it lists (of any type), replacing its previous entries. */
  upsert(node: IndexedNode): void {
    const name = node.metadata?.name;
    if (!name) return;
    this.remove(name);
    const keys = [
      ...new Set([name, ...(node.status?.addresses ?? []).map((a) => a.address)].map(nodeAddressKey)),
    ];
    for (const key of keys) {
      let names = this.nodesByKey.get(key);
      if (!names) this.nodesByKey.set(key, (names = new Set()));
      names.add(name);
    }
    this.keysByNode.set(name, keys);
  }

  delete(node: IndexedNode): void {
    const name = node.metadata?.name;
    if (name) this.remove(name);
  }

  /** Names of the Nodes whose name or an address is `key`. */
  nodesWithAddress(key: string): readonly string[] {
    return [...(this.nodesByKey.get(key) ?? [])];
  }

  private remove(name: string): void {
    for (const key of this.keysByNode.get(name) ?? []) {
      const names = this.nodesByKey.get(key);
      names?.delete(name);
      if (names?.size === 0) this.nodesByKey.delete(key);
    }
    this.keysByNode.delete(name);
  }
}
