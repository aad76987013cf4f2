/** Strict PEM handling: exactly the blocks we expect, no headers, nothing around them. */

export class PemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PemError";
  }
}

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const blockPattern = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
const base64Line = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes every PEM block in `text`. With `strict`, anything but whitespace between or around
 * the blocks is an error (a CSR with prose or a second object hidden around it is refused).
 */
export function decodePemBlocks(text: string, options: { strict: boolean }): PemBlock[] {
  const blocks: PemBlock[] = [];
  let cursor = 0;
  for (const match of text.matchAll(blockPattern)) {
    const [whole, label, body, endLabel] = match as unknown as [string, string, string, string];
    if (options.strict && text.slice(cursor, match.index).trim() !== "") {
      throw new PemError("unexpected text outside PEM blocks");
    }
    cursor = match.index + whole.length;
    if (label !== endLabel) throw new PemError(`PEM block BEGIN ${label} ends with END ${endLabel}`);
    const lines = body.split(/\r?\n/).filter((line) => line.trim() !== "");
    if (lines.some((line) => line.includes(":"))) throw new PemError(`PEM block ${label} has headers`);
    const base64 = lines.map((line) => line.trim()).join("");
    if (!base64Line.test(base64) || base64.length % 4 !== 0)
      throw new PemError(`PEM block ${label} is not base64`);
    blocks.push({ label, der: new Uint8Array(Buffer.from(base64, "base64")) });
  }
  if (options.strict && text.slice(cursor).trim() !== "")
    throw new PemError("unexpected text outside PEM blocks");
  return blocks;
}

/** Exactly one block with `label` and nothing else. */
export function decodeSinglePem(text: string, label: string): Uint8Array {
  const blocks = decodePemBlocks(text, { strict: true });
  if (blocks.length !== 1)
    throw new PemError(`expected exactly one ${label} PEM block, found ${blocks.length}`);
  const block = blocks[0]!;
  if (block.label !== label) throw new PemError(`expected a ${label} PEM block, found ${block.label}`);
  return block.der;
}

/** All CERTIFICATE blocks of a bundle; other blocks are an error. */
export function decodeCertificatesPem(text: string, what: string): Uint8Array[] {
  const blocks = decodePemBlocks(text, { strict: false });
  const other = blocks.find((block) => block.label !== "CERTIFICATE");
  if (other) throw new PemError(`${what}: unexpected ${other.label} block among certificates`);
  return blocks.map((block) => block.der);
}

export function encodePem(label: string, der: Uint8Array): string {
  const base64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
  let body = "";
  for (let i = 0; i < base64.length; i += 64) body += base64.slice(i, i + 64) + "\n";
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}
