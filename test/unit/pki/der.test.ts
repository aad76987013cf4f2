import { expect } from "chai";
import { DerError, decodeDer, readNamedBits, readObjectIdentifier } from "../../../src/pki/der-reader.js";
import {
  namedBitString,
  objectIdentifier,
  sequence,
  time,
  unsignedInteger,
} from "../../../src/pki/der-writer.js";
import { readString } from "../../../src/pki/der-strings.js";
import { readTime } from "../../support/der-time.js";

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe("strict DER reader", () => {
  it("decodes nested structures and keeps views of the input", () => {
    const input = sequence(unsignedInteger(bytes(5)), sequence());
    const node = decodeDer(input);
    expect(node.children).to.have.length(2);
    expect([...node.children[0]!.value]).to.deep.equal([5]);
    expect(node.encoded).to.deep.equal(input);
  });

  for (const [name, input, message] of [
    ["indefinite length (BER only)", bytes(0x30, 0x80, 0x00, 0x00), /indefinite/],
    ["non-minimal long-form length", bytes(0x04, 0x81, 0x01, 0x00), /non-minimal/],
    [
      "length with a leading zero byte",
      bytes(0x04, 0x82, 0x00, 0x81, ...new Array(0x81).fill(0)),
      /non-minimal/,
    ],
    ["trailing data", bytes(0x05, 0x00, 0x00), /trailing/],
    ["value longer than the input", bytes(0x04, 0x05, 0x00), /truncated/],
    [
      "child running past its parent",
      bytes(0x30, 0x02, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00),
      /truncated/,
    ],
    ["primitive SEQUENCE", bytes(0x10, 0x00), /constructed/],
    ["primitive SET", bytes(0x11, 0x00), /constructed/],
    // BER's constructed forms of primitive types (X.690 10.2: DER uses the primitive form only).
    ["constructed BOOLEAN", bytes(0x21, 0x03, 0x01, 0x01, 0xff), /must be primitive/],
    ["constructed INTEGER", bytes(0x22, 0x03, 0x02, 0x01, 0x05), /must be primitive/],
    ["constructed BIT STRING", bytes(0x23, 0x04, 0x03, 0x02, 0x00, 0x01), /must be primitive/],
    ["constructed OCTET STRING", bytes(0x24, 0x04, 0x04, 0x02, 0x30, 0x00), /must be primitive/],
    ["constructed NULL", bytes(0x25, 0x00), /must be primitive/],
    ["constructed OBJECT IDENTIFIER", bytes(0x26, 0x03, 0x06, 0x01, 0x2a), /must be primitive/],
    ["constructed UTF8String", bytes(0x2c, 0x03, 0x0c, 0x01, 0x61), /must be primitive/],
    ["constructed IA5String", bytes(0x36, 0x03, 0x16, 0x01, 0x61), /must be primitive/],
    ["constructed UTCTime", bytes(0x37, 0x02, 0x05, 0x00), /must be primitive/],
    ["end-of-contents outside an indefinite length", bytes(0x00, 0x00), /end-of-contents/],
    ["high tag number form", bytes(0x1f, 0x81, 0x00, 0x00), /high-tag/],
  ] as const) {
    it(`refuses ${name}`, () => {
      expect(() => decodeDer(input)).to.throw(DerError, message);
    });
  }

  it("refuses nesting deeper than the limit before recursing further", () => {
    let nested = sequence();
    for (let i = 0; i < 40; i++) nested = sequence(nested);
    expect(() => decodeDer(nested, { maxDepth: 16, maxNodes: 1000 })).to.throw(DerError, /deeper than 16/);
  });

  it("refuses more nodes than the limit", () => {
    const many = sequence(...Array.from({ length: 100 }, () => bytes(0x05, 0x00)));
    expect(() => decodeDer(many, { maxDepth: 16, maxNodes: 50 })).to.throw(DerError, /more than 50/);
  });

  it("refuses a constructed OBJECT IDENTIFIER nested in a SEQUENCE (it once read as 0.6.1.42)", () => {
    const input = sequence(bytes(0x26, 0x03, 0x06, 0x01, 0x2a));
    expect(() => decodeDer(input)).to.throw(DerError, /universal tag 6 must be primitive/);
  });

  it("keeps the constructed form of context-specific tags for the typed readers to judge", () => {
    const node = decodeDer(bytes(0xa0, 0x02, 0x05, 0x00));
    expect(node.constructed).to.equal(true);
    expect(node.children).to.have.length(1);
  });

  it("round-trips object identifiers, including large arcs", () => {
    for (const oid of ["1.2.840.113549.1.9.14", "2.5.29.17", "1.3.6.1.4.1.311.10.3.3", "2.999.1"]) {
      expect(readObjectIdentifier(decodeDer(objectIdentifier(oid)), "oid")).to.equal(oid);
    }
  });
});

describe("readObjectIdentifier matches Go's encoding/asn1", () => {
  const oidOf = (...content: number[]): string =>
    readObjectIdentifier(decodeDer(bytes(0x06, content.length, ...content)), "oid");

  it("reads an arc of 2^31-1, Go's largest", () => {
    expect(oidOf(0x2b, 0x87, 0xff, 0xff, 0xff, 0x7f)).to.equal("1.3.2147483647");
  });

  it("refuses an arc of 2^31 (Go: base 128 integer too large)", () => {
    expect(() => oidOf(0x2b, 0x88, 0x80, 0x80, 0x80, 0x00)).to.throw(DerError, /larger than 2\^31-1/);
  });

  it("refuses an arc of 2^53 before it loses precision", () => {
    expect(() => oidOf(0x2b, 0x90, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00)).to.throw(
      DerError,
      /larger/,
    );
  });

  for (const [name, content] of [
    ["a non-minimal first arc", [0x80, 0x2b]],
    ["a non-minimal later arc", [0x55, 0x1d, 0x80, 0x11]],
    ["a non-minimal last arc that is zero", [0x2b, 0x80, 0x00]],
  ] as const) {
    it(`refuses ${name} (leading 0x80)`, () => {
      expect(() => oidOf(...content)).to.throw(DerError, /non-minimal OID arc/);
    });
  }

  it("refuses a truncated arc", () => {
    expect(() => oidOf(0x2b, 0x86)).to.throw(DerError, /truncated/);
  });
});

describe("readString matches Go's encoding/asn1 string rules", () => {
  const read = (tag: number, ...content: number[]): string =>
    readString(decodeDer(bytes(tag, content.length, ...content)), "CN");
  const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));
  const ucs2 = (...units: number[]): number[] => units.flatMap((unit) => [unit >> 8, unit & 0xff]);

  it("reads a PrintableString of every character Go allows, '*' and '&' included", () => {
    const all = "ABCXYZabcxyz0189 '()+,-./:=?*&";
    expect(read(0x13, ...ascii(all))).to.equal(all);
  });

  for (const byte of [
    0x00, 0x0a, 0x21, 0x22, 0x23, 0x24, 0x25, 0x3b, 0x3c, 0x3e, 0x40, 0x5f, 0x60, 0x7b, 0x7e, 0x7f,
  ]) {
    it(`refuses a PrintableString with byte 0x${byte.toString(16).padStart(2, "0")}, which Go refuses`, () => {
      expect(() => read(0x13, 0x61, byte)).to.throw(DerError, /PrintableString contains/);
    });
  }

  // Go's isPrintable written out (encoding/asn1); checked against Go 1.26's x509.ParseCertificateRequest
  // by hand when the byte table came in: it takes exactly these 76 bytes in a PrintableString CN.
  it("takes exactly Go's PrintableString set, byte by byte over all 256", () => {
    const goSet = new Set(
      Array.from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&"),
    );
    const taken: number[] = [];
    for (let byte = 0; byte < 256; byte++) {
      try {
        expect(read(0x13, 0x61, byte)).to.equal(`a${String.fromCharCode(byte)}`);
        taken.push(byte);
      } catch (error) {
        if (!(error instanceof DerError)) throw error;
      }
    }
    expect(taken.map((byte) => String.fromCharCode(byte))).to.have.members([...goSet]);
    expect(taken).to.have.length(goSet.size);
  });

  it("reads an IA5String held inside a larger buffer as its own bytes only", () => {
    const node = decodeDer(bytes(0x30, 7, 0x16, 3, ...ascii("a=b"), 0x05, 0x00));
    expect(readString(node.children[0], "CN")).to.equal("a=b");
  });

  it("refuses a PrintableString CN with a NUL (the generated counterexample)", () => {
    expect(() => read(0x13, 0x00)).to.throw(DerError, /PrintableString contains byte 0x00/);
  });

  it("reads a BMPString of BMP characters", () => {
    expect(read(0x1e, ...ucs2(0x77, 0xe9, 0x62, 0xfeff, 0xfffd))).to.equal("w\u00e9b\ufeff\ufffd");
  });

  for (const [name, units, message] of [
    ["a lone surrogate", [0x61, 0xd800, 0x62], /surrogate/],
    ["a surrogate pair (UTF-16, not UCS-2)", [0xd83d, 0xde00], /surrogate/],
    ["the noncharacter U+FDD0", [0x61, 0xfdd0], /noncharacter U\+FDD0/],
    ["the noncharacter U+FDEF", [0xfdef], /noncharacter U\+FDEF/],
    ["the noncharacter U+FFFE", [0x61, 0xfffe], /noncharacter U\+FFFE/],
    ["the noncharacter U+FFFF", [0xffff], /noncharacter U\+FFFF/],
    [
      "a trailing NUL (Go strips it: admin\\0 would be admin to Go)",
      [0x61, 0x64, 0x6d, 0x69, 0x6e, 0],
      /U\+0000/,
    ],
    ["a NUL inside", [0x61, 0, 0x62], /U\+0000/],
  ] as const) {
    it(`refuses a BMPString with ${name}`, () => {
      expect(() => read(0x1e, ...ucs2(...units))).to.throw(DerError, message);
    });
  }

  it("keeps a leading U+FEFF in a UTF8String, as Go does (it is not a byte-order mark to strip)", () => {
    expect(read(0x0c, 0xef, 0xbb, 0xbf, ...ascii("admin"))).to.equal("\ufeffadmin");
  });

  for (const [name, content] of [
    ["a truncated sequence", [0x41, 0xc3]],
    ["an encoded surrogate (ED A0 80)", [0x61, 0xed, 0xa0, 0x80]],
    ["an overlong '/' (C0 AF)", [0x61, 0xc0, 0xaf]],
    ["a code point past U+10FFFF (F4 90 80 80)", [0xf4, 0x90, 0x80, 0x80]],
  ] as const) {
    it(`refuses a UTF8String with ${name}, which Go's utf8.Valid refuses`, () => {
      expect(() => read(0x0c, ...content)).to.throw(DerError, /invalid UTF-8/);
    });
  }

  it("refuses IA5String and TeletexString bytes past 0x7e (Go reads TeletexString as Latin-1)", () => {
    expect(() => read(0x16, 0x61, 0x80)).to.throw(DerError, /non-ASCII/);
    expect(() => read(0x14, 0x77, 0xe9, 0x62)).to.throw(DerError, /non-ASCII/);
  });

  it("refuses NumericString and UniversalString, which csr-signer does not read", () => {
    expect(() => read(0x12, 0x31)).to.throw(DerError, /unsupported string type 18/);
    expect(() => read(0x1c, 0, 0, 0, 0x61)).to.throw(DerError, /unsupported string type 28/);
  });
});

describe("DER writer", () => {
  it("encodes serials as positive minimal INTEGERs (no sign flip, no redundant zero)", () => {
    expect([...unsignedInteger(bytes(0x80, 0x01))]).to.deep.equal([0x02, 0x03, 0x00, 0x80, 0x01]);
    expect([...unsignedInteger(bytes(0x00, 0x00, 0x7f))]).to.deep.equal([0x02, 0x01, 0x7f]);
    expect([...unsignedInteger(bytes(0x00, 0x80))]).to.deep.equal([0x02, 0x02, 0x00, 0x80]);
  });

  it("writes keyUsage with the right unused-bits count and no trailing zero bytes", () => {
    // digitalSignature (0) + keyEncipherment (2): 1010 0000, 5 unused bits.
    expect([...namedBitString([0, 2])]).to.deep.equal([0x03, 0x02, 0x05, 0xa0]);
    // keyCertSign (5) + cRLSign (6): 0000 0110, 1 unused bit.
    expect([...namedBitString([5, 6])]).to.deep.equal([0x03, 0x02, 0x01, 0x06]);
    // decipherOnly (8) needs a second byte with 7 unused bits.
    expect([...namedBitString([0, 8])]).to.deep.equal([0x03, 0x03, 0x07, 0x80, 0x80]);
    expect(readNamedBits(decodeDer(namedBitString([0, 2, 8])), "ku")).to.deep.equal([0, 2, 8]);
  });

  it("uses UTCTime before 2050 and GeneralizedTime from 2050 (a 2051 date never becomes 1951)", () => {
    const before = time(new Date(Date.UTC(2049, 11, 31, 23, 59, 59)));
    const after = time(new Date(Date.UTC(2051, 0, 2, 3, 4, 5)));
    expect(before[0]).to.equal(0x17);
    expect(Buffer.from(before.subarray(2)).toString()).to.equal("491231235959Z");
    expect(after[0]).to.equal(0x18);
    expect(Buffer.from(after.subarray(2)).toString()).to.equal("20510102030405Z");
    expect(readTime(decodeDer(after), "t").toISOString()).to.equal("2051-01-02T03:04:05.000Z");
    expect(readTime(decodeDer(before), "t").getUTCFullYear()).to.equal(2049);
  });
});
