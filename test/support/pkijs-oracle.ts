import type * as asn1js from "asn1js";
import * as pkijs from "pkijs";

/** What a certificate says, as pkijs (an independent parser from ours) reads it. */
export interface CertificateAsReadByPkijs {
  serialNumber: Uint8Array;
  notBefore: Date;
  notAfter: Date;
  subject: { type: string; value: string }[];
  extensions: { oid: string; critical: boolean }[];
  basicConstraints?: { ca: boolean; pathLength?: number };
  keyUsageBits: number[];
  extendedKeyUsageOids: string[];
  subjectAltNames: { dns: string[]; ip: string[]; uri: string[]; email: string[] };
}

export function readWithPkijs(der: Uint8Array): CertificateAsReadByPkijs {
  const certificate = pkijs.Certificate.fromBER(der);
  const extensions = certificate.extensions ?? [];
  const find = (oid: string) => extensions.find((extension) => extension.extnID === oid);
  const basic = find("2.5.29.19")?.parsedValue as pkijs.BasicConstraints | undefined;
  const keyUsage = find("2.5.29.15")?.parsedValue as asn1js.BitString | undefined;
  const eku = find("2.5.29.37")?.parsedValue as pkijs.ExtKeyUsage | undefined;
  const san = find("2.5.29.17")?.parsedValue as pkijs.AltName | undefined;
  const keyUsageBits: number[] = [];
  if (keyUsage) {
    const bits = keyUsage.valueBlock.valueHexView;
    const total = bits.length * 8 - keyUsage.valueBlock.unusedBits;
    for (let bit = 0; bit < total; bit++)
      if (bits[Math.floor(bit / 8)]! & (0x80 >> (bit % 8))) keyUsageBits.push(bit);
  }
  const subjectAltNames = {
    dns: [] as string[],
    ip: [] as string[],
    uri: [] as string[],
    email: [] as string[],
  };
  for (const name of san?.altNames ?? []) {
    if (name.type === 2) subjectAltNames.dns.push(name.value as string);
    else if (name.type === 6) subjectAltNames.uri.push(name.value as string);
    else if (name.type === 1) subjectAltNames.email.push(name.value as string);
    else if (name.type === 7) {
      const raw = (name.value as asn1js.OctetString).valueBlock.valueHexView;
      subjectAltNames.ip.push(raw.length === 4 ? [...raw].join(".") : formatIpv6(raw));
    }
  }
  return {
    serialNumber: certificate.serialNumber.valueBlock.valueHexView,
    notBefore: certificate.notBefore.value,
    notAfter: certificate.notAfter.value,
    subject: certificate.subject.typesAndValues.map((tv) => ({
      type: tv.type,
      value: String(tv.value.valueBlock.value),
    })),
    extensions: extensions.map((extension) => ({ oid: extension.extnID, critical: extension.critical })),
    basicConstraints: basic
      ? {
          ca: Boolean(basic.cA),
          ...(basic.pathLenConstraint !== undefined ? { pathLength: Number(basic.pathLenConstraint) } : {}),
        }
      : undefined,
    keyUsageBits,
    extendedKeyUsageOids: eku?.keyPurposes ?? [],
    subjectAltNames,
  };
}

function formatIpv6(raw: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((raw[i]! << 8) | raw[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}
