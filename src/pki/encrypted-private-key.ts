/**
 * Encrypted PKCS#8 keys (ENCRYPTED PRIVATE KEY, RFC 5958 / PKCS#5 v2.1), decoded by our DER reader
 * before any key derivation: the CA key may come from a tenant's Secret, and OpenSSL would run
 * whatever derivation cost the file names (PBKDF2 with 2^31 iterations, scrypt with a huge N) on
 * the calling thread. Only what `openssl pkcs8 -topk8 -v2 aes256`, node:crypto, Go and Python write
 * is accepted: PBES2 with PBKDF2 (HMAC-SHA-1/224/256/384/512) and AES-128/192/256-CBC, at most
 * maximumPbkdf2Iterations. decryptPrivateKey derives on libuv's pool, never on the event loop.
 */
import { createDecipheriv, createPrivateKey, pbkdf2, pbkdf2Sync, type KeyObject } from "node:crypto";
import {
  checkMinimalInteger,
  decodeDer,
  expectSequence,
  expectUniversal,
  readObjectIdentifier,
  UniversalTag,
  type DerNode,
} from "./der-reader.js";
import { decodePemBlocks } from "./pem.js";

/**
 * The most PBKDF2 iterations accepted. OpenSSL (`openssl pkcs8`, node:crypto's export) writes
 * 2048, Go's and Python's libraries at most a few ten thousand; OWASP's current advice for
 * PBKDF2-HMAC-SHA-256 is 600,000, so an operator following it is served. More only makes each
 * decryption cost a tenant can impose longer (600,000 is a fraction of a second on one pool thread).
 */
export const maximumPbkdf2Iterations = 600_000;

export class EncryptedKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EncryptedKeyError";
  }
}

const Pbes2Oid = "1.2.840.113549.1.5.13";
const Pbkdf2Oid = "1.2.840.113549.1.5.12";
const ScryptOid = "1.3.6.1.4.1.11591.4.11";
/** PBES1 (PKCS#5 v1.5, 1.2.840.113549.1.5.x) and PKCS#12 PBE (1.2.840.113549.1.12.1.x) schemes. */
const pbes1Prefixes = ["1.2.840.113549.1.5.", "1.2.840.113549.1.12.1."];

const pseudoRandomFunctions: Readonly<Record<string, string>> = {
  "1.2.840.113549.2.7": "sha1",
  "1.2.840.113549.2.8": "sha224",
  "1.2.840.113549.2.9": "sha256",
  "1.2.840.113549.2.10": "sha384",
  "1.2.840.113549.2.11": "sha512",
};

const ciphers: Readonly<Record<string, { name: string; keyLength: number }>> = {
  "2.16.840.1.101.3.4.1.2": { name: "aes-128-cbc", keyLength: 16 },
  "2.16.840.1.101.3.4.1.22": { name: "aes-192-cbc", keyLength: 24 },
  "2.16.840.1.101.3.4.1.42": { name: "aes-256-cbc", keyLength: 32 },
};

/** The one scheme accepted, as read from an EncryptedPrivateKeyInfo. */
export interface EncryptedPrivateKey {
  readonly hash: string;
  readonly iterations: number;
  readonly salt: Uint8Array;
  readonly cipher: string;
  readonly keyLength: number;
  readonly iv: Uint8Array;
  readonly encryptedData: Uint8Array;
}

const rule =
  "encrypted CA keys must use PBES2 with PBKDF2 (HMAC-SHA-1/224/256/384/512) and AES-128/192/256-CBC " +
  `with at most ${maximumPbkdf2Iterations} iterations (openssl pkcs8 -topk8 -v2 aes256)`;

/** True when `text` holds an ENCRYPTED PRIVATE KEY block (decrypt it before parsing the key). */
export function isEncryptedPrivateKeyPem(text: string): boolean {
  return text.includes("-----BEGIN ENCRYPTED PRIVATE KEY-----");
}

/**
 * Reads an ENCRYPTED PRIVATE KEY PEM. Throws EncryptedKeyError naming the rule for any other scheme
 * (scrypt, PBES1, other ciphers or PRFs, too many iterations) or a malformed structure; never
 * quotes the input.
 */
export function readEncryptedPrivateKeyPem(pem: string): EncryptedPrivateKey {
  let der: Uint8Array;
  try {
    const blocks = decodePemBlocks(pem, { strict: true });
    if (blocks.length !== 1 || blocks[0]!.label !== "ENCRYPTED PRIVATE KEY") throw new Error("one block");
    der = blocks[0]!.der;
  } catch {
    // The PEM reader's message may describe the input; the rule is what the operator needs.
    throw new EncryptedKeyError("the CA private key is not exactly one ENCRYPTED PRIVATE KEY PEM block");
  }
  return readEncryptedPrivateKeyInfo(der);
}

export function readEncryptedPrivateKeyInfo(der: Uint8Array): EncryptedPrivateKey {
  let scheme: string;
  let info: DerNode;
  try {
    info = expectSequence(decodeDer(der), "EncryptedPrivateKeyInfo");
    scheme = readObjectIdentifier(
      expectSequence(info.children[0], "encryptionAlgorithm").children[0],
      "encryption scheme",
    );
  } catch {
    throw new EncryptedKeyError("the CA private key is not a well-formed EncryptedPrivateKeyInfo");
  }
  if (scheme !== Pbes2Oid) {
    const name = pbes1Prefixes.some((prefix) => scheme.startsWith(prefix)) ? "PBES1/PKCS#12 " : "";
    throw new EncryptedKeyError(`the CA private key uses ${name}encryption scheme ${scheme}; ${rule}`);
  }
  try {
    return readPbes2(info);
  } catch (error) {
    if (error instanceof EncryptedKeyError) throw error;
    throw new EncryptedKeyError(`the CA private key's PBES2 parameters are malformed; ${rule}`);
  }
}

function readPbes2(info: DerNode): EncryptedPrivateKey {
  if (info.children.length !== 2) throw new Error("EncryptedPrivateKeyInfo has 2 fields");
  const algorithm = info.children[0]!;
  if (algorithm.children.length !== 2) throw new Error("PBES2 has parameters");
  const parameters = expectSequence(algorithm.children[1], "PBES2-params");
  if (parameters.children.length !== 2) throw new Error("PBES2-params has 2 fields");
  const derivation = expectSequence(parameters.children[0], "keyDerivationFunc");
  const derivationOid = readObjectIdentifier(derivation.children[0], "keyDerivationFunc");
  if (derivationOid !== Pbkdf2Oid) {
    const name = derivationOid === ScryptOid ? "scrypt" : derivationOid;
    throw new EncryptedKeyError(`the CA private key derives its key with ${name}; ${rule}`);
  }
  const pbkdf2Parameters = expectSequence(derivation.children[1], "PBKDF2-params");
  const [saltNode, iterationsNode, ...optional] = pbkdf2Parameters.children;
  const salt = expectUniversal(saltNode, UniversalTag.octetString, "salt").value;
  const iterations = readBoundedCount(iterationsNode);
  // keyLength INTEGER OPTIONAL, then prf AlgorithmIdentifier DEFAULT hmacWithSHA1 (RFC 8018 A.2).
  let keyLength: number | undefined;
  if (optional[0]?.tagClass === 0 && optional[0].tagNumber === UniversalTag.integer)
    keyLength = readBoundedCount(optional.shift());
  let hash = "sha1";
  const prfNode = optional.shift();
  if (prfNode) {
    const prfOid = readObjectIdentifier(expectSequence(prfNode, "prf").children[0], "prf");
    const prf = pseudoRandomFunctions[prfOid];
    if (!prf) throw new EncryptedKeyError(`the CA private key's PBKDF2 uses PRF ${prfOid}; ${rule}`);
    hash = prf;
  }
  if (optional.length > 0) throw new Error("PBKDF2-params has at most 4 fields");
  const encryption = expectSequence(parameters.children[1], "encryptionScheme");
  const cipherOid = readObjectIdentifier(encryption.children[0], "encryptionScheme");
  const cipher = ciphers[cipherOid];
  if (!cipher)
    throw new EncryptedKeyError(`the CA private key is encrypted with cipher ${cipherOid}; ${rule}`);
  const iv = expectUniversal(encryption.children[1], UniversalTag.octetString, "IV").value;
  if (iv.length !== 16) throw new Error("an AES-CBC IV is 16 bytes");
  if (iterations === undefined || iterations === 0 || iterations > maximumPbkdf2Iterations)
    throw new EncryptedKeyError(
      `the CA private key's PBKDF2 iteration count is ${iterations === undefined ? `over ${2 ** 31 - 1}` : iterations}; ${rule}`,
    );
  if (keyLength !== undefined && keyLength !== cipher.keyLength)
    throw new Error("PBKDF2 keyLength differs from the cipher's");
  const encryptedData = expectUniversal(info.children[1], UniversalTag.octetString, "encryptedData").value;
  return { hash, iterations, salt, cipher: cipher.name, keyLength: cipher.keyLength, iv, encryptedData };
}

/** A non-negative INTEGER; undefined when larger than 2^31-1 (past any cap). */
function readBoundedCount(node: DerNode | undefined): number | undefined {
  const value = expectUniversal(node, UniversalTag.integer, "count").value;
  checkMinimalInteger(value, "count");
  if ((value[0]! & 0x80) !== 0) throw new Error("a negative count");
  const magnitude = value[0] === 0 ? value.subarray(1) : value;
  if (magnitude.length > 4) return undefined;
  const count = magnitude.reduce((n, byte) => n * 256 + byte, 0);
  return count > 2 ** 31 - 1 ? undefined : count;
}

const wrongPassphrase =
  "the CA private key could not be decrypted: wrong passphrase, or not an encrypted PKCS#8 key";

function openDecrypted(key: EncryptedPrivateKey, derivedKey: Buffer): KeyObject {
  try {
    const decipher = createDecipheriv(key.cipher, derivedKey, key.iv);
    const plain = Buffer.concat([decipher.update(key.encryptedData), decipher.final()]);
    return createPrivateKey({ key: plain, format: "der", type: "pkcs8" });
  } catch {
    // Bad padding or a PKCS#8 that does not parse: a wrong passphrase, almost always. OpenSSL's
    // message says nothing more the operator can use, and never the passphrase.
    throw new EncryptedKeyError(wrongPassphrase);
  }
}

/** Decrypts on libuv's thread pool: the event loop never runs PBKDF2. */
export async function decryptPrivateKey(key: EncryptedPrivateKey, passphrase: string): Promise<KeyObject> {
  const derivedKey = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(passphrase, key.salt, key.iterations, key.keyLength, key.hash, (error, derived) =>
      error ? reject(new EncryptedKeyError(wrongPassphrase)) : resolve(derived),
    ),
  );
  return openDecrypted(key, derivedKey);
}

/**
 * The same on the calling thread: for the offline CLI only (a person's own file, nothing else
 * waiting on the thread). The iteration cap still bounds it.
 */
export function decryptPrivateKeySync(key: EncryptedPrivateKey, passphrase: string): KeyObject {
  let derivedKey: Buffer;
  try {
    derivedKey = pbkdf2Sync(passphrase, key.salt, key.iterations, key.keyLength, key.hash);
  } catch {
    throw new EncryptedKeyError(wrongPassphrase);
  }
  return openDecrypted(key, derivedKey);
}
