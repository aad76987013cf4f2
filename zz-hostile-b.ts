import { randomBytes, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { parseCertificateRequest as parseNew } from "/work/main/src/pki/certificate-request.js";
import { parseCertificateRequest as parseOld } from "/tmp/review-cr/old.js";
import { sequence, set, tlv, objectIdentifier, derNull, smallInteger, bitStringBytes, unsignedInteger } from "/work/main/src/pki/der-writer.js";
import { encodePem } from "/work/main/src/pki/pem.js";
import { Oid } from "/work/main/src/pki/oids.js";
const subject = sequence(set(sequence(objectIdentifier("2.5.4.3"), tlv(0x0c, Buffer.from("x")))));
const rsaAlg = sequence(objectIdentifier(Oid.rsaEncryption), derNull());
const out = (f: () => any) => { try { f(); return "OK"; } catch (e: any) { return `${e.name}|${e.reason}|${e.message}`.slice(0, 110); } };
function req(nBytes: number, e: Uint8Array, sigLen: number, sigAlg = Oid.sha512WithRsa, topbit = 0xff) {
  const n = randomBytes(nBytes); n[0] = topbit; n[nBytes - 1] |= 1;
  const spki = sequence(rsaAlg, bitStringBytes(sequence(unsignedInteger(n), unsignedInteger(e))));
  const info = sequence(smallInteger(0), subject, spki, tlv(0xa0));
  const s = randomBytes(sigLen); s[0] = 0x01;
  return encodePem("CERTIFICATE REQUEST", sequence(info, sequence(objectIdentifier(sigAlg), derNull()), bitStringBytes(s)));
}
const cases: [string, string][] = [
  ["16384b e=2^31-1", req(2048, Buffer.from("7fffffff", "hex"), 2048)],
  ["16384b e=65537", req(2048, Buffer.from("010001", "hex"), 2048)],
  ["16392b e=2^31-1", req(2049, Buffer.from("7fffffff", "hex"), 2049)],
  ["20000b e=2^31-1 tiny sig", req(2500, Buffer.from("7fffffff", "hex"), 16)],
  ["36000b e=2^31-1", req(4500, Buffer.from("7fffffff", "hex"), 8)],
  ["4096b e=2^31-1", req(512, Buffer.from("7fffffff", "hex"), 512)],
  ["3072b e=2^31-1 sha256", req(384, Buffer.from("7fffffff", "hex"), 384, Oid.sha256WithRsa)],
];
{ const k = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey; const spki = createPublicKey(k).export({ format: "der", type: "spki" });
  const info = sequence(smallInteger(0), subject, new Uint8Array(spki), tlv(0xa0));
  cases.push(["2048 valid", encodePem("CERTIFICATE REQUEST", sequence(info, sequence(objectIdentifier(Oid.sha256WithRsa), derNull()), bitStringBytes(new Uint8Array(sign("sha256", info, k))))) ]); }
{ const k = generateKeyPairSync("ec", { namedCurve: "P-521" }).privateKey; const spki = createPublicKey(k).export({ format: "der", type: "spki" });
  const info = sequence(smallInteger(0), subject, new Uint8Array(spki), tlv(0xa0));
  cases.push(["P-521 valid", encodePem("CERTIFICATE REQUEST", sequence(info, sequence(objectIdentifier(Oid.ecdsaWithSha512)), bitStringBytes(new Uint8Array(sign("sha512", info, k))))) ]); }
for (const [name, pem] of cases) {
  const o = out(() => parseOld(pem)), nn = out(() => parseNew(pem));
  const t = (f: any) => { const N = 30; const s = performance.now(); for (let i = 0; i < N; i++) out(() => f(pem)); return ((performance.now() - s) / N).toFixed(3); };
  t(parseOld); t(parseNew);
  console.log(`${name} len=${pem.length} old=${t(parseOld)}ms new=${t(parseNew)}ms ${o === nn ? "same" : "DIFF"}: ${nn}`);
}
