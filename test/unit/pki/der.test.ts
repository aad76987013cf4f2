import { expect } from "chai";
import {
  DerError,
  decodeDer,
  namedBitString,
  objectIdentifier,
  readNamedBits,
  readObjectIdentifier,
  readTime,
  sequence,
  time,
  unsignedInteger,
} from "../../../src/pki/der.js";

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
