/**
 * Decoding of the ASN.1 string types a Name may hold, exactly as strictly as Go's encoding/asn1
 * (which kube-apiserver and most clients read CSRs and certificates with) or more so: a string
 * Go refuses is refused, and a string accepted here is the text Go reads.
 */
import { DerError, TagClass, UniversalTag, type DerNode } from "./der-reader.js";

/** ignoreBOM: a leading U+FEFF is text Go keeps; the default decoder would silently drop it. */
const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Go's PrintableString set (encoding/asn1 isPrintable): X.680's letters, digits, space and
 * ' ( ) + , - . / : = ? plus '*' and '&', which Go allows because real certificates use them.
 * A table by byte: a regular expression per byte cost more than the rest of reading a Name.
 */
const printableStringCharacter = new Uint8Array(256);
for (const character of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&")
  printableStringCharacter[character.charCodeAt(0)] = 1;

/**
 * The bytes as text, one character per byte (Latin-1; the ASCII readers check their bytes first).
 * Decoded by Buffer over the same memory, without a copy: `String.fromCharCode(...bytes)` spreads
 * every byte into an argument, which cost a few µs per SAN and grows with the input.
 */
export function latin1Text(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Reads the directory-string types a Name may use, as text. */
export function readString(node: DerNode | undefined, what: string): string {
  if (!node || node.tagClass !== TagClass.universal || node.constructed) {
    throw new DerError(`${what}: expected a string`);
  }
  switch (node.tagNumber) {
    case UniversalTag.utf8String:
      try {
        return utf8Decoder.decode(node.value);
      } catch {
        throw new DerError(`${what}: invalid UTF-8`);
      }
    case UniversalTag.printableString:
      for (const byte of node.value)
        if (printableStringCharacter[byte] !== 1)
          throw new DerError(
            `${what}: PrintableString contains ${describeByte(byte)}, outside its character set`,
          );
      return latin1Text(node.value);
    case UniversalTag.ia5String:
    case UniversalTag.teletexString:
      // Go reads IA5String as ASCII and TeletexString as Latin-1; ASCII without DEL is where both agree.
      for (const byte of node.value) if (byte > 0x7e) throw new DerError(`${what}: non-ASCII byte in string`);
      return latin1Text(node.value);
    case UniversalTag.bmpString:
      return readBmpString(node.value, what);
    default:
      throw new DerError(`${what}: unsupported string type ${node.tagNumber}`);
  }
}

/**
 * BMPString is UCS-2: one code unit per character. Go refuses surrogates (a pair would be UTF-16,
 * not UCS-2) and the noncharacters U+FDD0-U+FDEF, U+FFFE, U+FFFF, and strips one trailing U+0000 as
 * a terminator. NUL is refused anywhere, so "admin\0" is never read as "admin" by one side and
 * "admin\u0000" by the other.
 */
function readBmpString(value: Uint8Array, what: string): string {
  if (value.length % 2 !== 0) throw new DerError(`${what}: odd-length BMPString`);
  let text = "";
  for (let i = 0; i < value.length; i += 2) {
    const unit = (value[i]! << 8) | value[i + 1]!;
    if (unit === 0) throw new DerError(`${what}: BMPString contains U+0000`);
    if (unit >= 0xd800 && unit <= 0xdfff)
      throw new DerError(`${what}: BMPString contains a surrogate (UCS-2 has none)`);
    if ((unit >= 0xfdd0 && unit <= 0xfdef) || unit >= 0xfffe)
      throw new DerError(`${what}: BMPString contains the noncharacter ${codePoint(unit)}`);
    text += String.fromCharCode(unit);
  }
  return text;
}

const codePoint = (unit: number): string => `U+${unit.toString(16).toUpperCase().padStart(4, "0")}`;
const describeByte = (byte: number): string =>
  byte >= 0x20 && byte < 0x7f
    ? `'${String.fromCharCode(byte)}'`
    : `byte 0x${byte.toString(16).padStart(2, "0")}`;
