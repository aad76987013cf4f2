/**
 * Hand-made tricky certificate requests for the parser-differential test: each is re-signed with
 * its key, so only parsing decides. Names say what is tricky; what each side should do is the
 * test's property (csr-signer accepts nothing Go refuses, and sees what Go sees), not written here.
 */
import { createHash, privateEncrypt } from "node:crypto";
import {
  boolean,
  concat,
  derNullTree,
  encodeTree,
  integer,
  latin1,
  leaf,
  node,
  octetsOf,
  oid,
  rawBytes,
  seq,
  setOf,
  text,
  type DerTree,
} from "./der-tree.js";
import {
  Oids,
  certificationRequestInfo,
  largeExponentRsa,
  privateKeyOf,
  signedRequestTree,
  type NameValueSpec,
  type RequestSpec,
  type SanSpec,
} from "./differential-requests.js";

export interface HandMadeRequest {
  name: string;
  der: () => Uint8Array;
}

const cn = (value: string): NameValueSpec[] => [{ type: "2.5.4.3", kind: "utf8", value }];
const dns = (value: string): SanSpec => ({ kind: "dns", value });
const uri = (value: string): SanSpec => ({ kind: "uri", value });

const base: RequestSpec = {
  key: "ecdsa-p256",
  hash: "sha256",
  rsaNullParameters: true,
  compressedPoint: false,
  subject: [cn("web")],
  subjectAltNames: [dns("web.example.com")],
  subjectAltNamesCritical: false,
  extensions: [],
  sanPosition: 0,
  otherAttributes: [],
  otherAttributesFirst: false,
};

const children = (tree: DerTree | undefined): DerTree[] => tree!.content as DerTree[];
/** Paths into a CertificationRequestInfo built from a spec with an extensionRequest. */
const at = {
  attributes: (info: DerTree) => children(info)[3]!,
  extensionRequest: (info: DerTree) => children(at.attributes(info))[0]!,
  extensions: (info: DerTree) => children(children(at.extensionRequest(info))[1])[0]!,
  extension: (info: DerTree, index = 0) => children(at.extensions(info))[index]!,
  /** The OCTET STRING holding the extension's DER. */
  extnValue: (info: DerTree, index = 0) => children(at.extension(info, index)).at(-1)!,
  firstAttribute: (info: DerTree) => children(children(children(info)[1])[0])[0]!,
};
const setFirstRdnValue = (info: DerTree, value: DerTree): void => {
  children(at.firstAttribute(info))[1] = value;
};

function handMade(
  name: string,
  overrides: Partial<RequestSpec> = {},
  editInfo: (info: DerTree) => void = () => undefined,
  editRequest: (request: DerTree) => void = () => undefined,
): HandMadeRequest {
  return {
    name,
    der: () => {
      const spec = { ...base, ...overrides };
      const info = certificationRequestInfo(spec);
      editInfo(info);
      const request = signedRequestTree(spec, encodeTree(info));
      editRequest(request);
      return encodeTree(request);
    },
  };
}

const sanWith = (...names: DerTree[]): DerTree => seq(oid(Oids.subjectAltName), octetsOf(seq(...names)));
const extensionRequestOf = (...extensions: DerTree[]): DerTree =>
  seq(oid(Oids.extensionRequest), setOf(seq(...extensions)));

const sha256 = "2.16.840.1.101.3.4.2.1";

/** Signs the request again with the RSA key, padding a DigestInfo of our making (PKCS #1 v1.5, type 1). */
function resignWithDigestInfo(request: DerTree, digestInfo: (hash: Uint8Array) => DerTree): void {
  const info = children(request)[0]!.content as Uint8Array;
  const hash = new Uint8Array(createHash("sha256").update(info).digest());
  const signature = privateEncrypt(privateKeyOf("rsa-2048"), encodeTree(digestInfo(hash)));
  children(request)[2] = leaf(0x03, [0, ...signature]);
}

export const handMadeRequests: HandMadeRequest[] = [
  // Honest shapes
  handMade("RSA 2048, every SAN type", {
    key: "rsa-2048",
    subject: [cn("web"), [{ type: "2.5.4.10", kind: "printable", value: "acme" }]],
    subjectAltNames: [
      dns("web.example.com"),
      { kind: "ip", value: [10, 1, 2, 3] },
      { kind: "ip", value: [0xfd, ...Array(14).fill(0), 1] },
      uri("spiffe://cluster.local/ns/foo/sa/web"),
      { kind: "email", value: "web@example.com" },
    ],
  }),
  handMade('Istio-shaped: O="" and one critical SPIFFE URI SAN', {
    subject: [[{ type: "2.5.4.10", kind: "utf8", value: "" }]],
    subjectAltNames: [uri("spiffe://cluster.local/ns/foo/sa/default")],
    subjectAltNamesCritical: true,
  }),
  handMade("ztunnel-shaped: P-384, empty subject", { key: "ecdsa-p384", subject: [], hash: "sha384" }),
  handMade("P-521 key", { key: "ecdsa-p521", hash: "sha512" }),
  handMade("Ed25519 key", { key: "ed25519" }),
  handMade("ECDSA P-256 key as a compressed point", { compressedPoint: true }),
  handMade("RSA key with the public exponent 2^31+1 (Go's limit is 2^31-1)", { key: largeExponentRsa }),
  handMade(
    "RSAPublicKey SEQUENCE in BER high-tag-number form (OpenSSL reads it)",
    { key: "rsa-2048" },
    (info) => {
      const keyBits = children(children(info)[2])[1]!;
      children(keyBits)[1]!.identifier = [0x3f, 0x10];
    },
  ),
  handMade("RSA key under the X.500 OID 2.5.8.1.1 (OpenSSL reads it as RSA)", { key: "rsa-2048" }, (info) => {
    const keyAlgorithm = children(children(info)[2])[0]!;
    children(keyAlgorithm)[0] = oid("2.5.8.1.1");
  }),
  handMade("RSA key without NULL parameters", { key: "rsa-2048" }, (info) => {
    const keyAlgorithm = children(children(info)[2])[0]!;
    children(keyAlgorithm).pop();
  }),
  handMade("RSA key with [PRIVATE 0] instead of NULL parameters", { key: "rsa-2048" }, (info) => {
    const keyAlgorithm = children(children(info)[2])[0]!;
    children(keyAlgorithm)[1] = node(0xe0);
  }),
  handMade("sha256WithRSAEncryption without NULL parameters", { key: "rsa-2048", rsaNullParameters: false }),
  handMade("basicConstraints CA:TRUE requested", {
    extensions: [{ oid: Oids.basicConstraints, critical: true, value: seq(boolean(true)) }],
  }),
  handMade("challengePassword attribute before the extensionRequest", {
    otherAttributes: [seq(oid(Oids.challengePassword), setOf(text(0x13, "secret")))],
    otherAttributesFirst: true,
  }),
  handMade("critical FALSE written out (DER says omit it)", {}, (info) =>
    children(at.extension(info)).splice(1, 0, boolean(false)),
  ),
  // Shape of the request
  handMade("no attributes field at all (RFC 2986 makes [0] mandatory)", { subjectAltNames: [] }, (info) =>
    children(info).pop(),
  ),
  handMade("empty attributes [0]", { subjectAltNames: [] }),
  handMade("version 1 instead of 0", {}, (info) => (children(info)[0] = integer(1))),
  handMade("version as a non-minimal INTEGER", {}, (info) => (children(info)[0] = leaf(0x02, [0, 0]))),
  handMade("trailing data after the request", {}, undefined, (request) =>
    children(request).push(rawBytes([0])),
  ),
  handMade("trailing data inside the CertificationRequestInfo", {}, (info) =>
    children(info).push(rawBytes([0x05, 0x00])),
  ),
  handMade(
    "non-minimal length (BER) on the subject",
    {},
    (info) => (children(info)[1]!.lengthForm = "nonMinimal"),
  ),
  handMade(
    "indefinite length (BER) on the attributes",
    {},
    (info) => (at.attributes(info).lengthForm = "indefinite"),
  ),
  // Extensions and attributes
  handMade("SAN extension requested twice", {}, (info) =>
    children(at.extensions(info)).push(sanWith(latin1(0x82, "evil.example.com"))),
  ),
  handMade("two extensionRequest attributes, same SAN extension", {}, (info) =>
    children(at.attributes(info)).push(extensionRequestOf(sanWith(latin1(0x82, "evil.example.com")))),
  ),
  handMade("two extensionRequest attributes, different extensions", {}, (info) =>
    children(at.attributes(info)).push(
      extensionRequestOf(seq(oid(Oids.basicConstraints), boolean(true), octetsOf(seq(boolean(true))))),
    ),
  ),
  handMade("extensionRequest with two values (Go reads the first only)", {}, (info) =>
    children(children(at.extensionRequest(info))[1]).push(seq(sanWith(latin1(0x82, "evil.example.com")))),
  ),
  handMade("extensionRequest with no value", {}, (info) =>
    children(at.extensionRequest(info)).splice(1, 1, setOf()),
  ),
  handMade(
    "extensionRequest values as a SEQUENCE instead of a SET",
    {},
    (info) => (children(at.extensionRequest(info))[1]!.identifier = [0x30]),
  ),
  handMade(
    "constructed OCTET STRING (0x24) as extnValue",
    {},
    (info) => (at.extnValue(info).identifier = [0x24]),
  ),
  handMade("constructed OID (0x26) as the extension id", {}, (info) => {
    const extension = children(at.extension(info));
    extension[0] = node(0x26, oid(Oids.subjectAltName));
  }),
  handMade("constructed OID (0x26) as a subject attribute type", {}, (info) => {
    children(at.firstAttribute(info))[0] = node(0x26, oid("2.5.4.3"));
  }),
  handMade("constructed UTF8String (0x2c) as the CN", {}, (info) => {
    setFirstRdnValue(info, node(0x2c, text(0x0c, "web")));
  }),
  handMade("extension id with an arc of 2^31 (Go's limit is 2^31-1)", {}, (info) =>
    children(at.extension(info)).splice(0, 1, leaf(0x06, [0x2b, 0x88, 0x80, 0x80, 0x80, 0x00])),
  ),
  handMade("extension id with an arc of 2^31-1 (Go's largest)", {}, (info) =>
    children(at.extension(info)).splice(0, 1, leaf(0x06, [0x2b, 0x87, 0xff, 0xff, 0xff, 0x7f])),
  ),
  handMade("extension id with a non-minimal arc (leading 0x80)", {}, (info) =>
    children(at.extension(info)).splice(0, 1, leaf(0x06, [0x55, 0x1d, 0x80, 0x11])),
  ),
  handMade("critical as BOOLEAN 0x01 (BER true)", {}, (info) =>
    children(at.extension(info)).splice(1, 0, leaf(0x01, [0x01])),
  ),
  // SANs
  handMade("SAN value with trailing bytes after its SEQUENCE", {}, (info) =>
    children(at.extnValue(info)).push(rawBytes([0x82, 0x01, 0x78])),
  ),
  handMade("otherName SAN", { subjectAltNames: [] }, (info) =>
    children(info).splice(
      3,
      1,
      node(
        0xa0,
        extensionRequestOf(sanWith(node(0xa0, oid("1.3.6.1.4.1.311.20.2.3"), node(0xa0, text(0x0c, "x"))))),
      ),
    ),
  ),
  handMade("constructed dNSName [2] (0xa2)", {}, (info) =>
    children(children(at.extnValue(info))[0]).splice(0, 1, node(0xa2, latin1(0x16, "evil.example.com"))),
  ),
  handMade("empty SAN SEQUENCE", {}, (info) => children(at.extnValue(info)).splice(0, 1, seq())),
  handMade("IPv4-mapped IPv6 SAN ::ffff:10.96.0.1", {
    subjectAltNames: [{ kind: "ip", value: [...Array(10).fill(0), 0xff, 0xff, 10, 96, 0, 1] }],
  }),
  handMade("IP SAN of 5 bytes", { subjectAltNames: [{ kind: "ip", value: [10, 0, 0, 1, 0] }] }),
  handMade("DNS SAN with a space", { subjectAltNames: [dns("evil .example.com")] }),
  handMade("DNS SAN with a NUL byte", { subjectAltNames: [dns("evil.example.com\u0000.good.example")] }),
  handMade("DNS SAN with a non-ASCII byte", { subjectAltNames: [dns("\u00e9vil.example.com")] }),
  handMade("URI SAN with a port", { subjectAltNames: [uri("https://web.example.com:8443/x")] }),
  handMade("URI SAN with a bad percent escape", { subjectAltNames: [uri("spiffe://td/ns/%zz/sa/x")] }),
  handMade("URI SAN with user info", { subjectAltNames: [uri("spiffe://evil@td/ns/a/sa/b")] }),
  handMade("URI SAN with an invalid host", { subjectAltNames: [uri("spiffe://t_d!/ns/a/sa/b")] }),
  handMade("URI SAN with a backtick (Go re-escapes it as %60)", {
    subjectAltNames: [uri("spiffe://td/ns/a/sa/b`c")],
  }),
  handMade("URI SAN that Go re-encodes", { subjectAltNames: [uri("spiffe://td/ns/a%2Fb/sa/c")] }),
  handMade("URI SAN with an upper-case scheme (Go lower-cases it)", {
    subjectAltNames: [uri("SPIFFE://td/ns/a/sa/b")],
  }),
  handMade("URI SAN with an empty fragment (Go drops the '#')", {
    subjectAltNames: [uri("spiffe://td/ns/a/sa/b#")],
  }),
  handMade("URI SAN spiffe:// with an empty authority (Go writes it back as spiffe:)", {
    subjectAltNames: [uri("spiffe://")],
  }),
  handMade("URI SAN with a percent-escape in the host", {
    subjectAltNames: [uri("spiffe://t%41d/ns/a/sa/b")],
  }),
  handMade("URI SAN with escaped user info (Go unescapes it)", {
    subjectAltNames: [uri("spiffe://a%41b@td/ns/a/sa/b")],
  }),
  handMade("URI SAN with sub-delims in path, query and fragment", {
    subjectAltNames: [uri("spiffe://td/ns/a!$&'()*+,;=:@/sa/b?q=/?'!#f'!/?")],
  }),
  handMade("email SAN with two @", { subjectAltNames: [{ kind: "email", value: "a@evil.com@allowed.com" }] }),
  // Subject
  handMade("two CNs", { subject: [cn("a"), cn("b")] }),
  handMade("multi-valued RDN", {
    subject: [
      [
        { type: "2.5.4.10", kind: "utf8", value: "system:nodes" },
        { type: "2.5.4.3", kind: "utf8", value: "system:node:n1" },
      ],
    ],
  }),
  handMade("PrintableString with '_' and '@'", {
    subject: [[{ type: "2.5.4.3", kind: "printable", value: "a_b@c" }]],
  }),
  handMade("PrintableString with '*' and '&'", {
    subject: [[{ type: "2.5.4.3", kind: "printable", value: "*.a&b" }]],
  }),
  handMade("PrintableString CN with a NUL", {}, (info) => setFirstRdnValue(info, leaf(0x13, [0x61, 0x00]))),
  handMade("PrintableString with each character Go allows", {
    subject: [[{ type: "2.5.4.3", kind: "printable", value: "AZaz09 '()+,-./:=?*&" }]],
  }),
  handMade("UTF8String CN with a leading byte-order mark (U+FEFF)", {
    subject: [[{ type: "2.5.4.3", kind: "utf8", value: "\ufeffadmin" }]],
  }),
  handMade("UTF8String CN with an encoded surrogate (ED A0 80)", {}, (info) =>
    setFirstRdnValue(info, leaf(0x0c, [0x61, 0xed, 0xa0, 0x80])),
  ),
  handMade("UTF8String CN with an overlong '/' (C0 AF)", {}, (info) =>
    setFirstRdnValue(info, leaf(0x0c, [0x61, 0xc0, 0xaf])),
  ),
  handMade("IA5String CN with a NUL", {}, (info) => setFirstRdnValue(info, leaf(0x16, [0x61, 0x00, 0x62]))),
  handMade("TeletexString subject", { subject: [[{ type: "2.5.4.3", kind: "teletex", value: "web" }]] }),
  handMade("TeletexString with a Latin-1 byte", {
    subject: [[{ type: "2.5.4.3", kind: "teletex", value: "w\u00e9b" }]],
  }),
  handMade("BMPString subject", { subject: [[{ type: "2.5.4.3", kind: "bmp", value: "w\u00e9b" }]] }),
  handMade("BMPString with a lone surrogate", {
    subject: [[{ type: "2.5.4.3", kind: "bmp", value: "a\ud800b" }]],
  }),
  handMade("BMPString CN with a trailing NUL (Go strips it as a terminator)", {
    subject: [[{ type: "2.5.4.3", kind: "bmp", value: "admin\u0000" }]],
  }),
  handMade("BMPString CN with the noncharacter U+FDD0", {
    subject: [[{ type: "2.5.4.3", kind: "bmp", value: "a\ufdd0" }]],
  }),
  handMade("BMPString CN with the noncharacter U+FFFE", {}, (info) =>
    setFirstRdnValue(info, leaf(0x1e, [0, 0x61, 0xff, 0xfe])),
  ),
  handMade("BMPString CN with a NUL inside", {}, (info) =>
    setFirstRdnValue(info, leaf(0x1e, [0, 0x61, 0, 0, 0, 0x62])),
  ),
  handMade("BMPString of odd length", {}, (info) => setFirstRdnValue(info, leaf(0x1e, [0, 0x41, 0]))),
  handMade("UTF8String with invalid UTF-8", {}, (info) => setFirstRdnValue(info, leaf(0x0c, [0x41, 0xc3]))),
  handMade("NumericString subject", {}, (info) => setFirstRdnValue(info, latin1(0x12, "123"))),
  handMade("IA5String with DEL", {}, (info) => setFirstRdnValue(info, leaf(0x16, [0x41, 0x7f]))),
  handMade("subject attribute value as an INTEGER", {}, (info) => setFirstRdnValue(info, integer(5))),
  handMade(
    "subject RDN as a SEQUENCE instead of a SET",
    {},
    (info) => (children(children(info)[1])[0]!.identifier = [0x30]),
  ),
  handMade("BMPString CN of a surrogate pair", {
    subject: [[{ type: "2.5.4.3", kind: "bmp", value: "\ud83d\ude00" }]],
  }),
  // Signature
  handMade("ECDSA signature algorithm with NULL parameters", {}, undefined, (request) =>
    children(children(request)[1]).push(derNullTree()),
  ),
  handMade("RSA signature algorithm with non-NULL parameters", { key: "rsa-2048" }, undefined, (request) =>
    children(children(request)[1]).splice(1, 1, leaf(0x04, [])),
  ),
  handMade(
    "RSA signature whose DigestInfo omits the NULL parameters",
    { key: "rsa-2048" },
    undefined,
    (request) => resignWithDigestInfo(request, (hash) => seq(seq(oid(sha256)), leaf(0x04, hash))),
  ),
  handMade(
    "RSA signature whose DigestInfo has a non-minimal length",
    { key: "rsa-2048" },
    undefined,
    (request) =>
      resignWithDigestInfo(request, (hash) => ({
        ...seq(seq(oid(sha256), derNullTree()), leaf(0x04, hash)),
        lengthForm: "nonMinimal",
      })),
  ),
  handMade("RSA signature whose DigestInfo has trailing bytes", { key: "rsa-2048" }, undefined, (request) =>
    resignWithDigestInfo(request, (hash) =>
      seq(seq(oid(sha256), derNullTree()), leaf(0x04, hash), rawBytes([0])),
    ),
  ),
  handMade("ECDSA signature with a non-minimal INTEGER r", {}, undefined, (request) => {
    const ecdsaSignature = children(children(request)[2])[1]!;
    const r = children(ecdsaSignature)[0]!;
    r.content = concat([Uint8Array.of(0), r.content as Uint8Array]);
  }),
  handMade("signature BIT STRING with unused bits", {}, undefined, (request) => {
    children(children(request)[2]).splice(0, 1, rawBytes([1]));
  }),
  handMade(
    "RSA key, ECDSA signature algorithm",
    { key: "rsa-2048" },
    undefined,
    (request) => (children(request)[1] = seq(oid("1.2.840.10045.4.3.2"))),
  ),
  handMade(
    "sha1WithRSAEncryption named over a SHA-256 signature",
    { key: "rsa-2048" },
    undefined,
    (request) => (children(children(request)[1])[0] = oid("1.2.840.113549.1.1.5")),
  ),
  handMade("empty BMPString CN", { subject: [[{ type: "2.5.4.3", kind: "bmp", value: "" }]] }),
  handMade("empty subject with a SAN that is not critical", { subject: [] }),
  handMade("unknown attribute whose value does not parse, then the extensionRequest", {
    otherAttributes: [seq(oid("1.2.3.4"), leaf(0x04, [1]))],
    otherAttributesFirst: true,
  }),
  handMade("extensionRequest attribute with an extra element", {}, (info) =>
    children(at.extensionRequest(info)).push(integer(1)),
  ),
];
