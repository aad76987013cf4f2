import { randomFillSync } from "node:crypto";

const poolBytes = 4096;
let pool = new Uint8Array(0);
let used = 0;

/**
 * Bytes from the CSPRNG, handed out from a 4 KiB block refilled when spent: one randomFillSync
 * per 256 serial numbers instead of a call and a Buffer each (the same output, as Node's own
 * randomUUID cache does). Every caller gets its own copy; larger requests bypass the block.
 */
export function pooledRandomBytes(size: number): Uint8Array {
  if (size > poolBytes) return randomFillSync(new Uint8Array(size));
  if (used + size > pool.length) {
    pool = randomFillSync(new Uint8Array(poolBytes));
    used = 0;
  }
  const bytes = pool.slice(used, used + size);
  used += size;
  return bytes;
}
