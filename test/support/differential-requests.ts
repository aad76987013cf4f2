/**
 * Honest certificate requests as mutable trees, and their signing, for the parser-differential
 * test (test/unit/pki/parser-differential.test.ts). Requests are built here, not with src/pki,
 * so that the code under test does not also write its own inputs.
 */
import { ECDH, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import fc from "fast-check";
import {
  bmp,
  boolean,
  derNullTree,
  encodeMutated,
  integer,
  latin1,
  leaf,
  mutationKinds,
  node,
  octetsOf,
  oid,
  parseTree,
  rawBytes,
  seq,
  setOf,
  text,
  type DerTree,
  type Mutation,
} from "./der-tree.js";

export const keyKinds = ["rsa-2048", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519"] as const;
/** Hand-made cases only: an RSA public exponent above Go's limit of 2^31-1. */
export const largeExponentRsa = "rsa-2048-exponent-2^31+1";
export type KeyKind = (typeof keyKinds)[number] | typeof largeExponentRsa;
export type Hash = "sha256" | "sha384" | "sha512";

/** String types a Name value can take: UTF8String, PrintableString, IA5String, T61String, BMPString. */
export const stringTags = { utf8: 0x0c, printable: 0x13, ia5: 0x16, teletex: 0x14, bmp: 0x1e } as const;
export type StringKind = keyof typeof stringTags;

export interface NameValueSpec {
  type: string; // dotted OID
  kind: StringKind;
  value: string;
}

export interface SanSpec {
  kind: "dns" | "email" | "uri" | "ip";
  value: string | number[]; // bytes for ip
}

export interface ExtensionSpec {
  oid: string;
  critical: boolean;
  value: DerTree;
}

export interface RequestSpec {
  key: KeyKind;
  hash: Hash;
  /** sha*WithRSAEncryption parameters: NULL (as RFC 4055 says) or absent (also seen). */
  rsaNullParameters: boolean;
  /** An ECDSA key as a compressed point (legal in X9.62, refused by Go). */
  compressedPoint: boolean;
  /** RDNs, each a list of attributes (one, except in multi-valued RDNs). */
  subject: NameValueSpec[][];
  subjectAltNames: SanSpec[];
  subjectAltNamesCritical: boolean;
  /** Other requested extensions; the SAN extension goes in at sanPosition. */
  extensions: ExtensionSpec[];
  sanPosition: number;
  /** Attributes other than extensionRequest (challengePassword, unstructuredName). */
  otherAttributes: DerTree[];
  otherAttributesFirst: boolean;
}

const keys = new Map<KeyKind, KeyObject>();

/** One private key per kind for the whole run (RSA generation is slow); the key type is what varies. */
export function privateKeyOf(kind: KeyKind): KeyObject {
  let key = keys.get(kind);
  if (!key) {
    key =
      kind === "rsa-2048" || kind === largeExponentRsa
        ? generateKeyPairSync("rsa", {
            modulusLength: 2048,
            publicExponent: kind === largeExponentRsa ? 2 ** 31 + 1 : 65537,
          }).privateKey
        : kind === "ed25519"
          ? generateKeyPairSync("ed25519").privateKey
          : generateKeyPairSync("ec", { namedCurve: `P-${kind.slice(7)}` }).privateKey;
    keys.set(kind, key);
  }
  return key;
}

export const Oids = {
  extensionRequest: "1.2.840.113549.1.9.14",
  challengePassword: "1.2.840.113549.1.9.7",
  unstructuredName: "1.2.840.113549.1.9.2",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectKeyIdentifier: "2.5.29.14",
} as const;

export function nameValue(spec: NameValueSpec): DerTree {
  const tag = stringTags[spec.kind];
  if (spec.kind === "bmp") return bmp(spec.value);
  if (spec.kind === "teletex") return latin1(tag, spec.value);
  return text(tag, spec.value);
}

export function sanTree(san: SanSpec): DerTree {
  const tag = { email: 0x81, dns: 0x82, uri: 0x86, ip: 0x87 }[san.kind];
  return typeof san.value === "string" ? latin1(tag, san.value) : leaf(tag, san.value);
}

/** The CertificationRequestInfo of an honest request, as a tree to mutate. */
export function certificationRequestInfo(spec: RequestSpec): DerTree {
  const subject = seq(
    ...spec.subject.map((rdn) => setOf(...rdn.map((value) => seq(oid(value.type), nameValue(value))))),
  );
  const publicKey = createPublicKey(privateKeyOf(spec.key));
  const spki = parseTree(new Uint8Array(publicKey.export({ format: "der", type: "spki" })));
  if (publicKey.asymmetricKeyType === "rsa") {
    // The RSAPublicKey inside the BIT STRING as a tree too: OpenSSL, which csr-signer reads keys
    // with, and Go's cryptobyte may disagree on its encoding (lengths, integers, trailing bytes).
    const bits = (spki.content as DerTree[])[1]!;
    bits.content = [rawBytes([0]), parseTree((bits.content as Uint8Array).subarray(1))];
  }
  if (spec.compressedPoint && publicKey.asymmetricKeyType === "ec") {
    const point = (spki.content as DerTree[])[1]!;
    const curve = publicKey.asymmetricKeyDetails!.namedCurve!;
    const compressed = ECDH.convertKey(
      Buffer.from((point.content as Uint8Array).subarray(1)),
      curve,
      undefined,
      undefined,
      "compressed",
    );
    point.content = Uint8Array.from([0, ...(compressed as Buffer)]);
  }
  const extensions = spec.extensions.map((extension) =>
    seq(oid(extension.oid), ...(extension.critical ? [boolean(true)] : []), octetsOf(extension.value)),
  );
  if (spec.subjectAltNames.length > 0) {
    const san = seq(
      oid(Oids.subjectAltName),
      ...(spec.subjectAltNamesCritical ? [boolean(true)] : []),
      octetsOf(seq(...spec.subjectAltNames.map(sanTree))),
    );
    extensions.splice(spec.sanPosition % (extensions.length + 1), 0, san);
  }
  const attributes = extensions.length ? [seq(oid(Oids.extensionRequest), setOf(seq(...extensions)))] : [];
  if (spec.otherAttributesFirst) attributes.unshift(...spec.otherAttributes);
  else attributes.push(...spec.otherAttributes);
  return seq(integer(0), subject, spki, node(0xa0, ...attributes));
}

const signatureOids: Record<"rsa" | "ec", Record<Hash, string>> = {
  rsa: { sha256: "1.2.840.113549.1.1.11", sha384: "1.2.840.113549.1.1.12", sha512: "1.2.840.113549.1.1.13" },
  ec: { sha256: "1.2.840.10045.4.3.2", sha384: "1.2.840.10045.4.3.3", sha512: "1.2.840.10045.4.3.4" },
};

/**
 * Signs the (possibly mutated) CertificationRequestInfo bytes with the spec's key, so proof of
 * possession holds whatever the mutation did, then applies mutations to the outer structure
 * (signatureAlgorithm, signature BIT STRING, trailing data).
 */
export function signedRequest(
  spec: RequestSpec,
  info: Uint8Array,
  outerMutations: readonly Mutation[] = [],
): Uint8Array {
  return encodeMutated(signedRequestTree(spec, info), outerMutations);
}

/** The signed CertificationRequest as a tree: [info (raw bytes), signatureAlgorithm, signature]. */
export function signedRequestTree(spec: RequestSpec, info: Uint8Array): DerTree {
  const key = privateKeyOf(spec.key);
  let algorithm: DerTree;
  let signature: Buffer;
  if (spec.key === "ed25519") {
    algorithm = seq(oid("1.3.101.112"));
    signature = sign(null, info, key);
  } else if (spec.key === "rsa-2048" || spec.key === largeExponentRsa) {
    algorithm = seq(oid(signatureOids.rsa[spec.hash]), ...(spec.rsaNullParameters ? [derNullTree()] : []));
    signature = sign(spec.hash, info, key);
  } else {
    algorithm = seq(oid(signatureOids.ec[spec.hash]));
    signature = sign(spec.hash, info, key);
  }
  // An ECDSA signature is DER too (SEQUENCE of r and s): as a tree, outer mutations reach its encoding.
  const signatureBits = spec.key.startsWith("ecdsa")
    ? node(0x03, rawBytes([0]), parseTree(signature))
    : leaf(0x03, [0, ...signature]);
  return seq(rawBytes(info), algorithm, signatureBits);
}

// ---------------------------------------------------------------------------------------------
// fast-check arbitraries

const nameTypes = [
  "2.5.4.3", // CN
  "2.5.4.10", // O
  "2.5.4.11", // OU
  "2.5.4.6", // C
  "2.5.4.7", // L
  "2.5.4.8", // ST
  "2.5.4.5", // serialNumber
  "2.5.4.42", // givenName
  "0.9.2342.19200300.100.1.25", // domainComponent
  "1.2.840.113549.1.9.1", // emailAddress
];

// Go's PrintableString set, '*' and '&' included (encoding/asn1 allows them for real-world certificates).
const printableAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?*&";
const asciiCharacter = fc.nat(0x7f).map((c) => String.fromCharCode(c));
/** UCS-2 units Go's BMPString reader refuses or treats specially: NUL, surrogates, noncharacters, BOM. */
const trickyBmpUnits = [0x0000, 0xd800, 0xdbff, 0xdc00, 0xdfff, 0xfdd0, 0xfdef, 0xfeff, 0xfffe, 0xffff];

const nameValueArbitrary: fc.Arbitrary<NameValueSpec> = fc.oneof(
  fc.record({
    type: fc.constantFrom(...nameTypes),
    kind: fc.constant<StringKind>("printable"),
    value: fc.string({
      unit: fc.oneof(
        { weight: 19, arbitrary: fc.constantFrom(...printableAlphabet) },
        { weight: 1, arbitrary: asciiCharacter },
      ),
      maxLength: 12,
    }),
  }),
  fc.record({
    type: fc.constantFrom(...nameTypes),
    kind: fc.constantFrom<StringKind>("ia5", "teletex"),
    value: fc.string({ maxLength: 12 }), // printable ASCII
  }),
  fc.record({
    type: fc.constantFrom(...nameTypes),
    kind: fc.constant<StringKind>("utf8"),
    // A leading U+FEFF is text to Go, not a byte-order mark to strip.
    value: fc
      .tuple(fc.constantFrom("", "", "", "\ufeff"), fc.string({ unit: "grapheme", maxLength: 8 }))
      .map(([prefix, rest]) => prefix + rest),
  }),
  fc.record({
    type: fc.constantFrom(...nameTypes),
    kind: fc.constant<StringKind>("bmp"),
    // BMPString is UCS-2: characters of the Basic Multilingual Plane; now and then a unit Go refuses.
    value: fc.string({
      unit: fc.oneof(
        {
          weight: 15,
          arbitrary: fc
            .nat(0xfffd)
            .filter((c) => c < 0xd800 || c > 0xdfff)
            .map((c) => String.fromCharCode(c)),
        },
        { weight: 1, arbitrary: fc.constantFrom(...trickyBmpUnits).map((c) => String.fromCharCode(c)) },
      ),
      maxLength: 8,
    }),
  }),
);

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);

/**
 * URIs glued from pieces where RFC 3986 and Go's url.Parse + URL.String() part ways: case, empty
 * authorities, user info, percent-escapes good and bad, characters Go re-escapes, empty fragments.
 */
const uriPieces = [
  "/",
  "/",
  "td",
  "a",
  "B",
  ".",
  ":",
  "8443",
  "@",
  "?",
  "#",
  "%41",
  "%2F",
  "%2f",
  "%25",
  "%00",
  "%C3%A9",
  "%zz",
  "%",
  "%4",
  "[",
  "]",
  "::1",
  "!",
  "$",
  "&",
  "'",
  "(",
  ")",
  "*",
  "+",
  ",",
  ";",
  "=",
  "-",
  "_",
  "~",
  "`",
  '"',
  "<",
  ">",
  "{",
  "}",
  "|",
  "\\",
  "^",
  " ",
];
const uriOfPiecesArbitrary: fc.Arbitrary<string> = fc
  .tuple(
    fc.constantFrom("spiffe://", "spiffe:", "spiffe:/", "SPIFFE://", "urn:", "https://", "x+y.z-1:", "//"),
    fc.array(fc.constantFrom(...uriPieces), { maxLength: 8 }),
  )
  .map(([start, pieces]) => start + pieces.join(""));

const sanArbitrary: fc.Arbitrary<SanSpec> = fc.oneof(
  fc.record({
    kind: fc.constant("dns" as const),
    value: fc.oneof(
      fc.domain(),
      label.map((l) => `*.${l}.example`),
    ),
  }),
  fc.record({ kind: fc.constant("email" as const), value: fc.emailAddress() }),
  fc.record({
    kind: fc.constant("uri" as const),
    value: fc.oneof(
      fc.tuple(fc.domain(), label, label).map(([td, ns, sa]) => `spiffe://${td}/ns/${ns}/sa/${sa}`),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      uriOfPiecesArbitrary,
    ),
  }),
  fc.record({
    kind: fc.constant("ip" as const),
    value: fc.oneof(
      fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }),
      fc.array(fc.nat(255), { minLength: 16, maxLength: 16 }),
      fc
        .array(fc.nat(255), { minLength: 4, maxLength: 4 })
        .map((v4) => [...Array(10).fill(0), 0xff, 0xff, ...v4]),
    ),
  }),
);

const extensionArbitrary: fc.Arbitrary<ExtensionSpec> = fc.oneof(
  fc.record({
    oid: fc.constant(Oids.basicConstraints),
    critical: fc.boolean(),
    value: fc
      .tuple(fc.boolean(), fc.option(fc.nat(5)))
      .map(([ca, pathLen]) =>
        seq(...(ca ? [boolean(true)] : []), ...(pathLen === null ? [] : [integer(pathLen)])),
      ),
  }),
  fc.record({
    oid: fc.constant(Oids.keyUsage),
    critical: fc.boolean(),
    value: fc.nat(255).map((bits) => leaf(0x03, [bits & 1 ? 0 : 1, bits | 0x80])),
  }),
  fc.record({
    oid: fc.constant(Oids.extKeyUsage),
    critical: fc.boolean(),
    value: fc.constant(seq(oid("1.3.6.1.5.5.7.3.1"), oid("1.3.6.1.5.5.7.3.2"))),
  }),
  fc.record({
    oid: fc.constant(Oids.subjectKeyIdentifier),
    critical: fc.constant(false),
    value: fc.array(fc.nat(255), { minLength: 1, maxLength: 20 }).map((id) => leaf(0x04, id)),
  }),
  fc.record({
    // Arcs around Go's limit of 2^31-1 now and then.
    oid: fc
      .oneof(
        { weight: 9, arbitrary: fc.nat(99) },
        { weight: 1, arbitrary: fc.integer({ min: 2 ** 31 - 3, max: 2 ** 31 + 2 }) },
      )
      .map((n) => `1.3.6.1.4.1.99999.${n}`),
    critical: fc.boolean(),
    value: fc.string({ maxLength: 10 }).map((value) => text(0x0c, value)),
  }),
);

const otherAttributeArbitrary: fc.Arbitrary<DerTree> = fc.oneof(
  fc
    .string({ minLength: 1, maxLength: 10 })
    .map((password) => seq(oid(Oids.challengePassword), setOf(text(0x0c, password)))),
  label.map((name) => seq(oid(Oids.unstructuredName), setOf(text(0x16, name)))),
);

export const requestSpecArbitrary: fc.Arbitrary<RequestSpec> = fc.record({
  key: fc.constantFrom(...keyKinds),
  hash: fc.constantFrom<Hash>("sha256", "sha384", "sha512"),
  rsaNullParameters: fc.boolean(),
  compressedPoint: fc.oneof(
    { weight: 7, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  subject: fc.array(
    fc.oneof(
      { weight: 9, arbitrary: nameValueArbitrary.map((value) => [value]) },
      { weight: 1, arbitrary: fc.array(nameValueArbitrary, { minLength: 2, maxLength: 3 }) },
    ),
    { maxLength: 4 },
  ),
  subjectAltNames: fc.array(sanArbitrary, { maxLength: 4 }),
  subjectAltNamesCritical: fc.boolean(),
  extensions: fc.uniqueArray(extensionArbitrary, { maxLength: 3, selector: (extension) => extension.oid }),
  sanPosition: fc.nat(3),
  otherAttributes: fc.array(otherAttributeArbitrary, { maxLength: 1 }),
  otherAttributesFirst: fc.boolean(),
});

export const mutationArbitrary: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom(...mutationKinds),
  target: fc.nat(255),
  parameter: fc.nat(0xffff),
  bytes: fc.array(fc.nat(255), { maxLength: 6 }),
});

export interface DifferentialCase {
  spec: RequestSpec;
  /** Applied to the CertificationRequestInfo before signing. */
  infoMutations: Mutation[];
  /** Applied to the signed CertificationRequest (rarer: most of these just break the signature). */
  outerMutations: Mutation[];
}

export const differentialCaseArbitrary: fc.Arbitrary<DifferentialCase> = fc.record({
  spec: requestSpecArbitrary,
  infoMutations: fc.array(mutationArbitrary, { maxLength: 3 }),
  outerMutations: fc.oneof(
    { weight: 6, arbitrary: fc.constant<Mutation[]>([]) },
    { weight: 1, arbitrary: fc.array(mutationArbitrary, { minLength: 1, maxLength: 1 }) },
  ),
});

export function requestOf(testCase: DifferentialCase): Uint8Array {
  const info = encodeMutated(certificationRequestInfo(testCase.spec), testCase.infoMutations);
  return signedRequest(testCase.spec, info, testCase.outerMutations);
}
