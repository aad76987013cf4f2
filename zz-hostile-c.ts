import { generateKeyPairSync, sign, createPublicKey, randomInt, type KeyObject } from "node:crypto";
import { parseCertificateRequest as parseNew } from "/work/main/src/pki/certificate-request.js";
import { parseCertificateRequest as parseOld } from "/tmp/review-cr/old.js";
import { sequence, set, tlv, objectIdentifier, derNull, smallInteger, bitStringBytes, octetString } from "/work/main/src/pki/der-writer.js";
import { encodePem } from "/work/main/src/pki/pem.js";
import { Oid } from "/work/main/src/pki/oids.js";
const out = (f: () => any) => { try { const r = f(); const { publicKey, ...rest } = r; return "OK " + JSON.stringify(rest, (k, v) => typeof v === "bigint" ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString("hex") : v); } catch (e: any) { return `${e?.name}|${e?.reason ?? ""}|${e?.message}`; } };
const keys: [KeyObject, string | null, Uint8Array][] = [];
for (const c of ["P-256", "P-384", "P-521", "secp256k1", "brainpoolP256r1"]) { const k = generateKeyPairSync("ec", { namedCurve: c }).privateKey; const h = c === "P-384" ? "sha384" : c === "P-521" ? "sha512" : "sha256";
  keys.push([k, h, sequence(objectIdentifier(h === "sha384" ? Oid.ecdsaWithSha384 : h === "sha512" ? Oid.ecdsaWithSha512 : Oid.ecdsaWithSha256))]); }
for (const n of [512, 1024]) keys.push([generateKeyPairSync("rsa", { modulusLength: n }).privateKey, "sha256", sequence(objectIdentifier(Oid.sha256WithRsa), derNull())]);
keys.push([generateKeyPairSync("ed25519").privateKey, null, sequence(objectIdentifier("1.3.101.112"))]);
const strs = [[0x13, "Ab c"], [0x16, "ia5"], [0x0c, "utf"], [0x14, "tele"], [0x1e, "\0B\0M"]] as const;
const N = Number(process.argv[2] ?? 50000);
let total = 0, diffs = 0, nonCre = 0; const classes = new Map<string, number>();
for (let i = 0; i < N; i++) {
  const [k, h, alg] = keys[i % keys.length]!;
  const spki = new Uint8Array(createPublicKey(k).export({ format: "der", type: "spki" }));
  const [st, sv] = strs[randomInt(strs.length)]!;
  const subject = sequence(set(sequence(objectIdentifier("2.5.4.3"), tlv(st, Buffer.from(sv, "latin1")))), set(sequence(objectIdentifier("2.5.4.10"), tlv(0x13, Buffer.from("Org")))));
  const sans = sequence(tlv(0x82, Buffer.from("a.example.com")), tlv(0x86, Buffer.from("spiffe://td/ns/x/sa/y")), tlv(0x81, Buffer.from("u@example.com")), tlv(0x87, Uint8Array.of(10, 0, 0, 1)));
  const exts = sequence(sequence(objectIdentifier(Oid.subjectAltName), octetString(sans)), sequence(objectIdentifier(Oid.basicConstraints), octetString(sequence())));
  let info = sequence(smallInteger(0), subject, spki, tlv(0xa0, sequence(objectIdentifier(Oid.extensionRequest), set(exts))));
  const region = randomInt(4); // 0: anywhere in info (resign), 1: info w/o resign, 2: sigalg, 3: signature
  if (region <= 1) { info = info.slice(); const m = randomInt(1, 4); for (let j = 0; j < m; j++) { const p = randomInt(info.length); const r = randomInt(4); if (r === 0) info[p] = randomInt(256); else if (r === 1) info[p]! ^= 1 << randomInt(8); else if (r === 2) info[p] = [0x7f, 0x80, 0xff, 0x00, 0x20, 0x7e][randomInt(6)]!; else info[p] = info[randomInt(info.length)]!; } }
  let sig: Uint8Array;
  try { sig = new Uint8Array(sign(h, region === 1 ? info : info, k)); } catch { sig = new Uint8Array(64).fill(1); }
  if (region === 1) { /* signature over mutated info too; keep */ }
  let a = alg; if (region === 2) { a = a.slice(); a[randomInt(a.length)]! ^= 1 << randomInt(8); if (randomInt(3) === 0) a = keys[randomInt(keys.length)]![2]; }
  let sb = bitStringBytes(sig); if (region === 3) { sb = sb.slice(); sb[randomInt(sb.length)]! ^= 1 << randomInt(8); }
  const der = sequence(info, a, sb);
  const pem = encodePem("CERTIFICATE REQUEST", der);
  const o = out(() => parseOld(pem)), nn = out(() => parseNew(pem)); total++;
  if (!nn.startsWith("OK") && !nn.startsWith("CertificateRequestError")) { nonCre++; if (nonCre < 5) console.log("NONCRE", nn.slice(0, 200), Buffer.from(der).toString("hex")); }
  const cls = nn.startsWith("OK") ? "OK" : nn.split("|").slice(0, 2).join("|"); classes.set(cls, (classes.get(cls) ?? 0) + 1);
  if (o !== nn) { diffs++; if (diffs < 10) console.log("DIFF\n  old", o.slice(0, 200), "\n  new", nn.slice(0, 200), "\n ", Buffer.from(der).toString("hex")); }
}
console.log(`total ${total} diffs ${diffs} nonCRE ${nonCre}`, classes);
