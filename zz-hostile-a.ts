import { generateKeyPairSync, sign, createPublicKey, randomInt, randomBytes } from "node:crypto";
import { parseCertificateRequest as parseNew } from "/work/main/src/pki/certificate-request.js";
import { parseCertificateRequest as parseOld } from "/tmp/review-cr/old.js";
import { latin1Text, readString } from "/work/main/src/pki/der-strings.js";
import { decodeDer } from "/work/main/src/pki/der-reader.js";
import { sequence, set, tlv, objectIdentifier, derNull, smallInteger, bitStringBytes, unsignedInteger, octetString } from "/work/main/src/pki/der-writer.js";
import { encodePem } from "/work/main/src/pki/pem.js";
import { Oid } from "/work/main/src/pki/oids.js";
// 1. PrintableString table vs old regex, via readString
const re = /^[A-Za-z0-9 '()+,\-./:=?*&]$/;
let pmis = 0;
for (let b = 0; b < 256; b++) {
  const node = decodeDer(tlv(0x13, Uint8Array.of(0x41, b, 0x42)), { maxDepth: 4, maxNodes: 4 });
  let ok: boolean; try { const s = readString(node, "x"); ok = s === "A" + String.fromCharCode(b) + "B"; if (!ok) console.log("TEXT", b); } catch { ok = false; }
  if (ok !== re.test(String.fromCharCode(b))) { pmis++; console.log("PRINTABLE MISMATCH", b); }
  const ia = decodeDer(tlv(0x16, Uint8Array.of(b)), { maxDepth: 4, maxNodes: 4 });
  let iok: boolean; try { iok = readString(ia, "x") === String.fromCharCode(b); } catch { iok = false; }
  if (iok !== (b <= 0x7e)) { pmis++; console.log("IA5 MISMATCH", b); }
}
console.log("printable/ia5 byte mismatches", pmis, "of 512");
// 2. latin1Text on pooled / offset views
let lmis = 0, ln = 0;
for (let i = 0; i < 100000; i++) {
  const big = Buffer.from(randomBytes(randomInt(1, 300)));
  const s = randomInt(big.length + 1), e = randomInt(s, big.length + 1);
  const v = big.subarray(s, e); const v2 = new Uint8Array(v.buffer, v.byteOffset, v.byteLength).subarray(0, randomInt(v.length + 1));
  for (const x of [v, v2]) { ln++; if (latin1Text(x) !== String.fromCharCode(...x)) lmis++; }
}
console.log("latin1Text mismatches", lmis, "of", ln);
// 3. Uint8Array views with junk around: same outcome as the exact bytes
const k = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
const spki = new Uint8Array(createPublicKey(k).export({ format: "der", type: "spki" }));
const subject = sequence(set(sequence(objectIdentifier("2.5.4.3"), tlv(0x13, Buffer.from("x")))));
const san = sequence(sequence(objectIdentifier(Oid.subjectAltName), octetString(sequence(tlv(0x82, Buffer.from("a.example")), tlv(0x86, Buffer.from("spiffe://td/ns/x")), tlv(0x81, Buffer.from("a@b.c"))))));
const attrs = tlv(0xa0, sequence(objectIdentifier(Oid.extensionRequest), set(san)));
const info = sequence(smallInteger(0), subject, spki, attrs);
const der = sequence(info, sequence(objectIdentifier(Oid.ecdsaWithSha256)), bitStringBytes(new Uint8Array(sign("sha256", info, k))));
const pem = encodePem("CERTIFICATE REQUEST", der);
const out = (f: () => any) => { try { const r = f(); delete r.publicKey; return "OK " + JSON.stringify(r.subjectAltNames) + JSON.stringify(r.subject); } catch (e: any) { return `${e.name}|${e.reason}|${e.message}`; } };
const ref = out(() => parseNew(pem));
console.log("ref", ref);
let vmis = 0, vn = 0;
for (let i = 0; i < 2000; i++) {
  const pre = randomBytes(randomInt(0, 50)), post = Buffer.from(pem.replace("a.example", "b\u00ffexample"), "latin1").subarray(0, randomInt(0, 200));
  const whole = Buffer.concat([pre, Buffer.from(pem, "latin1"), post]);
  const view = whole.subarray(pre.length, pre.length + pem.length);
  vn++; const a = out(() => parseNew(view)), b = out(() => parseOld(view));
  if (a !== ref || b !== ref) { vmis++; console.log("VIEW", a); }
}
console.log("view mismatches", vmis, "of", vn);
