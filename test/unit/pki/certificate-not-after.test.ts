import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import { leafNotAfterMs } from "../../../src/pki/certificate.js";
import { opensslSelfSignedCertificate } from "../../support/openssl.js";

const asStatusCertificate = (pem: string): string => Buffer.from(pem).toString("base64");

/**
 * A fresh certificate whose base64 body ends in padding, with the padding removed (Buffer still
 * decodes it; Go does not). The DER's length varies with the signature, so a few may be made.
 */
function unpaddedCertificate(): string {
  for (let attempt = 0; attempt < 30; attempt++) {
    const pem = opensslSelfSignedCertificate(1);
    const unpadded = pem.replace(/=+\n-----END/, "\n-----END");
    if (unpadded !== pem) return unpadded;
  }
  throw new Error("no certificate with base64 padding in 30 attempts");
}

describe("leafNotAfterMs (what the CSR cache keeps of our status.certificate)", () => {
  const shortLived = opensslSelfSignedCertificate(1); // UTCTime
  const pastTwentyFifty = opensslSelfSignedCertificate(10_000); // GeneralizedTime: NotAfter in 2054

  it("reads the leaf's NotAfter as OpenSSL does, in UTCTime and in GeneralizedTime", () => {
    for (const pem of [shortLived, pastTwentyFifty]) {
      expect(leafNotAfterMs(asStatusCertificate(pem))).to.equal(
        new X509Certificate(pem).validToDate.getTime(),
      );
    }
    expect(new Date(leafNotAfterMs(asStatusCertificate(pastTwentyFifty))!).getUTCFullYear()).to.be.at.least(
      2050,
    );
  });

  it("reads the first certificate of a chain, not the CA's after it", () => {
    const chain = shortLived + pastTwentyFifty;
    expect(leafNotAfterMs(asStatusCertificate(chain))).to.equal(
      new X509Certificate(shortLived).validToDate.getTime(),
    );
  });

  it("undefined, never a throw, for what is not a certificate", () => {
    const der = new X509Certificate(shortLived).raw;
    for (const value of [
      "",
      "Q0VSVA==", // "CERT"
      asStatusCertificate("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
      asStatusCertificate("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
      asStatusCertificate(
        `-----BEGIN CERTIFICATE-----\n${der.subarray(0, der.length - 10).toString("base64")}\n-----END CERTIFICATE-----\n`,
      ),
    ]) {
      expect(leafNotAfterMs(value), value).to.equal(undefined);
    }
  });

  it("never throws on any cut or flipped byte of a real certificate (the cache reads it on every watch event)", () => {
    const der = new X509Certificate(shortLived).raw;
    const wrap = (bytes: Buffer): string =>
      asStatusCertificate(
        `-----BEGIN CERTIFICATE-----\n${bytes.toString("base64")}\n-----END CERTIFICATE-----\n`,
      );
    const expected = new X509Certificate(shortLived).validToDate.getTime();
    for (let length = 0; length < der.length; length++) {
      const read = leafNotAfterMs(wrap(der.subarray(0, length)));
      expect(read === undefined || read === expected, `cut at ${length}`).to.equal(true);
    }
    for (let index = 0; index < der.length; index++) {
      const flipped = Buffer.from(der);
      flipped[index] = flipped[index]! ^ 0xff;
      const read = leafNotAfterMs(wrap(flipped));
      expect(read === undefined || Number.isFinite(read), `flipped byte ${index}`).to.equal(true);
    }
  });

  it("reads a block whose END line Go takes: spaces or tabs, then at most one carriage return, before its newline", () => {
    const expected = Date.parse(new X509Certificate(shortLived).validTo);
    for (const rest of [" ", "\t", "\r", " \t\r"])
      expect(
        leafNotAfterMs(
          asStatusCertificate(
            shortLived.replace("-----END CERTIFICATE-----\n", `-----END CERTIFICATE-----${rest}\n`),
          ),
        ),
        JSON.stringify(rest),
      ).to.equal(expected);
  });

  it("undefined for what Go's PEM decoder would read differently (text before the block, after its END line) or not strictly base64", () => {
    const decoy = opensslSelfSignedCertificate(1); // another readable certificate in front
    const cases = [
      `x${decoy}${shortLived}`, // Go skips a BEGIN not at a line's start and reads the second block
      `note\n${shortLived}`,
      shortLived.replace("-----END CERTIFICATE-----", "-----END CERTIFICATE----- trailing"),
      shortLived.replace(/\n([A-Za-z0-9+/]{10})/, "\n-_$1"), // URL-safe characters Buffer would take
      // Blocks Go skips, reading the one after: END not at a line's start, more on the BEGIN line.
      `${decoy.replace(/\n-----END CERTIFICATE-----/, "-----END CERTIFICATE-----")}${shortLived}`,
      `${decoy.replace("-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----")}${shortLived}`,
      // ...a "\r" then more text after the END dashes, and a body without its base64 padding.
      `${decoy.replace("-----END CERTIFICATE-----\n", "-----END CERTIFICATE-----\rx\n")}${shortLived}`,
      // Go drops only one "\r", right before the newline: "\r\r", "\r " and "\r\t" leave more.
      ...["\r\r", "\r ", "\r\t"].map(
        (rest) =>
          `${decoy.replace("-----END CERTIFICATE-----\n", `-----END CERTIFICATE-----${rest}\n`)}${shortLived}`,
      ),
      `${unpaddedCertificate()}${shortLived}`,
    ];
    for (const pem of cases)
      expect(leafNotAfterMs(asStatusCertificate(pem)), pem.slice(0, 80)).to.equal(undefined);
  });

  it("undefined for DER with bytes after the certificate, or a NotAfter whose fields are out of range", () => {
    const der = new X509Certificate(shortLived).raw;
    const wrap = (bytes: Buffer): string =>
      asStatusCertificate(
        `-----BEGIN CERTIFICATE-----\n${bytes.toString("base64")}\n-----END CERTIFICATE-----\n`,
      );
    expect(leafNotAfterMs(wrap(der))).to.equal(new X509Certificate(shortLived).validToDate.getTime());
    expect(leafNotAfterMs(wrap(Buffer.concat([der, Buffer.from([0x05, 0x00])])))).to.equal(undefined);
    // The second UTCTime (tag 0x17, 13 bytes) is NotAfter: YYMMDDHHMMSSZ.
    const notAfterAt = der.indexOf(Buffer.from([0x17, 0x0d]), der.indexOf(Buffer.from([0x17, 0x0d])) + 2) + 2;
    for (const [offset, text] of [
      [2, "13"], // month
      [4, "32"], // day
      [6, "24"], // hour
      [8, "60"], // minute
    ] as const) {
      const bad = Buffer.from(der);
      bad.write(text, notAfterAt + offset, "latin1");
      expect(leafNotAfterMs(wrap(bad)), `${offset}: ${text}`).to.equal(undefined);
    }
    // Bytes next to the digits, signs and spaces in a digit's place; another terminator than Z.
    for (const [offset, text] of [
      [0, "/"], // 0x2f, one below "0"
      [3, ":"], // 0x3a, one above "9"
      [5, "+"],
      [7, " "],
      [9, "-"],
      [11, "a"],
      [12, "z"],
    ] as const) {
      const bad = Buffer.from(der);
      bad.write(text, notAfterAt + offset, "latin1");
      expect(leafNotAfterMs(wrap(bad)), `${offset}: ${text}`).to.equal(undefined);
    }
  });

  it("reads only the two lengths RFC 5280 writes: 13 bytes of UTCTime, 15 of GeneralizedTime, years 1950 on", () => {
    const der = new X509Certificate(shortLived).raw;
    const wrap = (bytes: Buffer): string =>
      asStatusCertificate(
        `-----BEGIN CERTIFICATE-----\n${bytes.toString("base64")}\n-----END CERTIFICATE-----\n`,
      );
    const notBeforeAt = der.indexOf(Buffer.from([0x17, 0x0d]));
    const notAfterAt = der.indexOf(Buffer.from([0x17, 0x0d]), notBeforeAt + 2);
    const validityAt = notBeforeAt - 2; // SEQUENCE (0x30, short length) around the two times
    expect(der[validityAt]).to.equal(0x30);
    /** The certificate with its NotAfter TLV replaced (lengths of the enclosing SEQUENCEs fixed up). */
    const withNotAfter = (tag: number, text: string): Buffer => {
      const time = Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, "latin1")]);
      const validity = Buffer.concat([der.subarray(notBeforeAt, notAfterAt), time]);
      return reencode(
        der,
        validityAt,
        notAfterAt + 15,
        Buffer.concat([Buffer.from([0x30, validity.length]), validity]),
      );
    };
    const utc = 0x17;
    const generalized = 0x18;
    expect(leafNotAfterMs(wrap(withNotAfter(utc, "350102030405Z")))).to.equal(Date.UTC(2035, 0, 2, 3, 4, 5));
    expect(leafNotAfterMs(wrap(withNotAfter(utc, "500102030405Z")))).to.equal(Date.UTC(1950, 0, 2, 3, 4, 5));
    expect(leafNotAfterMs(wrap(withNotAfter(generalized, "20550102030405Z")))).to.equal(
      Date.UTC(2055, 0, 2, 3, 4, 5),
    );
    for (const [tag, text] of [
      [utc, "3501020304Z"], // no seconds
      [utc, "35010203040Z"],
      [utc, "3501020304050Z"],
      [utc, "350102030405+0000"],
      [generalized, "350102030405Z"], // UTCTime's length under GeneralizedTime's tag
      [generalized, "20550102030405.5Z"],
      [generalized, "00500102030405Z"], // year 50: not a year a certificate has
      [0x0c, "350102030405Z"], // a UTF8String
    ] as const)
      expect(leafNotAfterMs(wrap(withNotAfter(tag, text))), `${tag}: ${text}`).to.equal(undefined);
  });

  it("refuses a body of 48,000 line breaks and a stray space in one pass (a pattern that backtracked took seconds)", () => {
    const pem = `-----BEGIN CERTIFICATE-----\n${"\n".repeat(48_000)} \n-----END CERTIFICATE-----\n`;
    // Ten reads: past the suite's 20 s timeout with the backtracking pattern (2.2 s each).
    for (let repeat = 0; repeat < 10; repeat++)
      expect(leafNotAfterMs(asStatusCertificate(pem))).to.equal(undefined);
    // And line breaks anywhere in a real certificate's body still read.
    const spaced = shortLived.replace(/\n(?!-)/g, "\r\n\n");
    expect(leafNotAfterMs(asStatusCertificate(spaced))).to.equal(
      new X509Certificate(shortLived).validToDate.getTime(),
    );
  });
});

/**
 * `der` with the TLV at [start, end) replaced by `replacement`, and the lengths of the Certificate and
 * tbsCertificate SEQUENCEs around it (both with two-byte long-form lengths, as these are) adjusted.
 */
function reencode(der: Buffer, start: number, end: number, replacement: Buffer): Buffer {
  const out = Buffer.concat([der.subarray(0, start), replacement, der.subarray(end)]);
  const delta = replacement.length - (end - start);
  for (const at of [0, 4]) {
    expect([out[at], out[at + 1]], `SEQUENCE with a two-byte length at ${at}`).to.deep.equal([0x30, 0x82]);
    out.writeUInt16BE(out.readUInt16BE(at + 2) + delta, at + 2);
  }
  return out;
}
