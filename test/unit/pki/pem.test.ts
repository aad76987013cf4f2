import { expect } from "chai";
import {
  PemError,
  decodeCertificatesPem,
  decodePemBlocks,
  decodeSinglePem,
  encodePem,
  measurePemScan,
} from "../../../src/pki/pem.js";

const der = (...values: number[]): Uint8Array => Uint8Array.from(values);
const certificate = encodePem("CERTIFICATE", der(0x30, 0x03, 0x02, 0x01, 0x07));
const request = encodePem("CERTIFICATE REQUEST", der(0x30, 0x00));
const mebibyte = 1 << 20;

/** A deterministic pseudo-random generator (xorshift32): the same garbage on every run. */
function pseudoRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
}

function repeatTo(unit: string, size: number): string {
  return unit.repeat(Math.ceil(size / unit.length)).slice(0, size);
}

/** Garbage a CA Secret, trust bundle or CSR may hold, `size` characters of it. */
const garbageShapes: Record<string, (size: number) => string> = {
  "BEGIN lines and no END (quadratic for the lazy block pattern)": (size) =>
    repeatTo("-----BEGIN CERTIFICATE-----\n", size),
  "one BEGIN line, then base64 without an END line": (size) =>
    "-----BEGIN CERTIFICATE-----\n" + repeatTo("QUJD\n", size - 28),
  "END lines only": (size) => repeatTo("-----END CERTIFICATE-----\n", size),
  "dashes only": (size) => "-".repeat(size),
  "BEGIN markers with no label": (size) => repeatTo("-----BEGIN ", size),
  "a label that never ends": (size) => "-----BEGIN " + "A".repeat(size - 11),
  "good blocks, then a BEGIN without END": (size) =>
    repeatTo(certificate + "note: between blocks\n", size - 28) + "-----BEGIN CERTIFICATE-----\n",
  "pseudo-random printable text with markers sprinkled in": (size) => {
    const random = pseudoRandom(10);
    const markers = ["-----BEGIN CERTIFICATE-----\n", "-----END CERTIFICATE-----\n"];
    const bytes = new Uint8Array(size);
    for (let at = 0; at < size;) {
      const roll = random();
      if (roll < 0.01) {
        const marker = markers[roll < 0.006 ? 0 : 1]!;
        for (let i = 0; i < marker.length && at < size; i++) bytes[at++] = marker.charCodeAt(i);
      } else bytes[at++] = 32 + Math.floor(random() * 95);
    }
    return Buffer.from(bytes).toString("latin1");
  },
};

describe("PEM decoding", () => {
  it("decodes a bundle, ignoring text between blocks when not strict (openssl's subject= lines)", () => {
    const bundle = `subject=CN=a\n${certificate}\nissuer=CN=b\r\n${certificate.replaceAll("\n", "\r\n")}`;
    const blocks = decodeCertificatesPem(bundle, "bundle");
    expect(blocks).to.have.length(2);
    expect([...blocks[1]!]).to.deep.equal([0x30, 0x03, 0x02, 0x01, 0x07]);
  });

  it("decodes exactly one block of the label when strict, with whitespace around it", () => {
    expect([...decodeSinglePem(`\n  ${request}\n`, "CERTIFICATE REQUEST")]).to.deep.equal([0x30, 0x00]);
  });

  for (const [name, text, message] of [
    ["text before the block", `hello\n${request}`, /unexpected text outside PEM blocks/],
    ["text after the block", `${request}hello`, /unexpected text outside PEM blocks/],
    ["no block at all", "not a csr", /unexpected text outside PEM blocks/],
    ["two blocks", request + request, /expected exactly one CERTIFICATE REQUEST PEM block, found 2/],
    ["another label", certificate, /expected a CERTIFICATE REQUEST PEM block, found CERTIFICATE/],
    ["a BEGIN line without END", "-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n", /has no END line/],
    ["mismatched END", request.replace("END CERTIFICATE REQUEST", "END X"), /ends with END X/],
    ["headers", request.replace("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n"), /has headers/],
    ["a lower-case label", request.replaceAll("CERTIFICATE REQUEST", "csr"), /malformed PEM BEGIN line/],
    ["a BEGIN line with more after it", request.replace("-----\n", "----- x\n"), /does not end the line/],
    ["characters outside base64", request.replace("MAA=", "MA*="), /not base64/],
    ["padding in the middle", request.replace("MAA=", "MA=A"), /not base64/],
    ["a length that is no multiple of 4", request.replace("MAA=", "MAA"), /not base64/],
    ["a block inside a block", request.replace("MAA=\n", request), /not base64/],
  ] as const) {
    it(`refuses ${name}`, () => {
      expect(() => decodeSinglePem(text, "CERTIFICATE REQUEST")).to.throw(PemError, message);
    });
  }

  it("refuses a 4 KiB label without echoing it: errors land in Signer conditions and Events", () => {
    const label = "A".repeat(4096);
    const text = `-----BEGIN ${label}-----\nMAA=\n-----END ${label}-----\n`;
    let message = "";
    try {
      decodeCertificatesPem(text, "ca.crt");
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).to.match(/malformed PEM BEGIN line/);
    expect(message.length).to.be.below(200);
  });

  it("refuses a bundle whose last BEGIN has no END instead of dropping that certificate", () => {
    const truncated = certificate + certificate.slice(0, 40);
    expect(() => decodeCertificatesPem(truncated, "ca.crt")).to.throw(PemError, /has no END line/);
  });

  it("applies no regular expression to the text it scans (a lazy [\\s\\S]*? block pattern was quadratic)", () => {
    const original = RegExp.prototype.exec;
    let calls = 0;
    RegExp.prototype.exec = function (this: RegExp, input: string) {
      calls++;
      return original.call(this, input);
    };
    const garbage = garbageShapes["BEGIN lines and no END (quadratic for the lazy block pattern)"]!(4096);
    let garbageOutcome: unknown;
    try {
      decodeCertificatesPem(`subject=CN=a\n${certificate}${certificate}`, "bundle");
      decodeSinglePem(request, "CERTIFICATE REQUEST");
      try {
        garbageOutcome = decodePemBlocks(garbage, { strict: false });
      } catch (error) {
        garbageOutcome = error;
      }
    } finally {
      RegExp.prototype.exec = original;
    }
    expect(calls, "RegExp.prototype.exec calls while decoding").to.equal(0);
    expect(garbageOutcome).to.be.instanceOf(PemError);
  });

  describe("work is linear in the input: at most 3 characters examined per input character", () => {
    for (const [shape, make] of Object.entries(garbageShapes)) {
      it(`${shape}: 1 MiB and 4 MiB, strict and not`, () => {
        for (const strict of [true, false]) {
          const work = [mebibyte, 4 * mebibyte].map((size) => {
            const text = make(size);
            expect(text.length).to.equal(size);
            const characters = measurePemScan(text, { strict });
            expect(characters, `strict=${strict}, ${size} characters`).to.be.at.most(3 * size + 64);
            // Bounded, so now decoded for real: blocks or a PemError, nothing else.
            try {
              decodePemBlocks(text, { strict });
            } catch (error) {
              expect(error).to.be.instanceOf(PemError);
            }
            return characters;
          });
          // Four times the input, at most four times the work (plus a block's worth of slack).
          expect(work[1]!, `strict=${strict}`).to.be.at.most(4 * work[0]! + 64);
        }
      });
    }
  });
});
