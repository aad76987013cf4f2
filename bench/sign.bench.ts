/**
 * make bench-sign: certificates per second on one core for the whole issuance path
 * (PEM CSR parse + proof-of-possession verify + template + sign + PEM chain), against
 * - Go's crypto/x509 doing the same work on the same CSRs and CA with the same certificate profile
 *   (hack/bench/x509-sign, GOMAXPROCS=1, on the core this process is pinned to), the target;
 * - the floor: bare node:crypto doing the same cryptography (key import, verify, sign) and nothing else;
 * - a naive pkijs build (CertificationRequest.fromBER, verify, Certificate.sign) on Node's
 *   native WebCrypto and on the @peculiar/webcrypto polyfill, the stack the design card started from.
 * csr-signer, Go and the floor run interleaved in 0.25 s turns on the same core (see measureInterleaved).
 * Then the same issuance with the CA key in a SoftHSM2 token (PKCS#11, ECDSA P-256) against the same
 * key type in memory, interleaved likewise (BENCH_CA=pkcs11 runs only that).
 * Prints a Markdown table for BENCHMARKS.md.
 */
import { execFileSync, spawn } from "node:child_process";
import { createPrivateKey, createPublicKey, sign, verify, webcrypto, X509Certificate } from "node:crypto";
import { cpus, totalmem } from "node:os";
import { createInterface } from "node:readline";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { Crypto as PeculiarCrypto } from "@peculiar/webcrypto";
import { parseCertificateRequest } from "../src/pki/certificate-request.js";
import { decodeDer, expectSequence, readBitStringBytes, type DerNode } from "../src/pki/der-reader.js";
import { decodeCertificatesPem } from "../src/pki/pem.js";
import { issueLeafCertificate } from "../src/pki/issuance.js";
import {
  buildTestCertificateRequest,
  makeTestCertificateAuthority,
  testKey,
  type TestKeyType,
} from "../test/support/pki.js";
import type { CertificateAuthorityKeyType } from "../src/pki/offline-ca.js";
import { buildScript, testBinary } from "../test/support/testbin.js";
import { createSoftHsmToken } from "../test/support/softhsm.js";
import { generatePkcs11KeyPair } from "../src/pki/pkcs11/index.js";
import { signIntermediateCertificate } from "../src/pki/offline-ca.js";
import { sourceRevision } from "./controller/common.js";

type WebCrypto = typeof webcrypto;

const secondsPerCase = Number(process.env.BENCH_SECONDS ?? 3);
/**
 * Narrower runs: BENCH_ONLY=ours runs only csr-signer's path (for `node --cpu-prof`), BENCH_ONLY=go
 * csr-signer, Go and the floor without pkijs; BENCH_CA=ecdsa (or rsa) one CA type.
 */
const onlyOurs = process.env.BENCH_ONLY === "ours";
const skipPkijs = process.env.BENCH_ONLY === "go";
const onlyCaType = process.env.BENCH_CA;
const distinctRequests = 200;
const distinctKeys = 20; // RSA key generation is slow; 20 keys across 200 requests defeat any caching

/** What one turn did: certificates, wall-clock seconds, CPU seconds (user and system, all threads). */
interface Slice {
  count: number;
  seconds: number;
  cpuSeconds: number;
}

/** Something that issues for `seconds` and says how much it did. */
interface Contender {
  readonly name: string;
  runSlice(seconds: number): Promise<Slice>;
}

/** A Node contender: warmed up once, then timed in slices. */
async function nodeContender(
  name: string,
  run: (index: number) => Promise<unknown> | unknown,
): Promise<Contender> {
  for (let i = 0; i < 200; i++) await run(i); // warm-up: JIT and caches
  let index = 0;
  return {
    name,
    async runSlice(seconds) {
      const started = performance.now();
      const startedCpu = process.cpuUsage();
      const deadline = started + seconds * 1000;
      let count = 0;
      while (performance.now() < deadline) {
        for (let i = 0; i < 50; i++, count++) await run(index++);
      }
      const cpu = process.cpuUsage(startedCpu);
      return {
        count,
        seconds: (performance.now() - started) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
      };
    },
  };
}

/** Certificates per CPU-second (the per-core figure) and per wall-clock second. */
interface Rate {
  perCpuSecond: number;
  perSecond: number;
}

/**
 * Runs the contenders in turns of `sliceSeconds` (the order rotating every round) until each has
 * had `secondsPerCase`. Two defences against a shared machine: a neighbour's burst lands on all of
 * them alike, and the per-core figure divides by the CPU time each process actually got (its own
 * threads, GC included), not by the wall clock, which also counts time spent waiting for the core.
 */
async function measureInterleaved(contenders: readonly Contender[], sliceSeconds = 0.25): Promise<Rate[]> {
  const totals = contenders.map(() => ({ count: 0, seconds: 0, cpuSeconds: 0 }));
  const rounds = Math.max(1, Math.round(secondsPerCase / sliceSeconds));
  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < contenders.length; turn++) {
      const which = (round + turn) % contenders.length;
      const slice = await contenders[which]!.runSlice(sliceSeconds);
      totals[which]!.count += slice.count;
      totals[which]!.seconds += slice.seconds;
      totals[which]!.cpuSeconds += slice.cpuSeconds;
    }
  }
  return contenders.map((contender, index) => {
    const { count, seconds, cpuSeconds } = totals[index]!;
    const rate = { perCpuSecond: count / cpuSeconds, perSecond: count / seconds };
    process.stderr.write(
      `  ${contender.name}: ${rate.perCpuSecond.toFixed(0)} per CPU-second (${rate.perSecond.toFixed(0)}/s wall clock)\n`,
    );
    return rate;
  });
}

interface Scenario {
  label: string;
  caKey: CertificateAuthorityKeyType;
  requestKey: TestKeyType;
}

const scenarios: Scenario[] = [
  { label: "ECDSA P-256 CA, P-256 CSRs", caKey: "ecdsa-p256", requestKey: "ecdsa-p256" },
  { label: "RSA-2048 CA, RSA-2048 CSRs", caKey: "rsa-2048", requestKey: "rsa-2048" },
];

function pemToDer(pem: string): Uint8Array {
  return new Uint8Array(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64"));
}

async function naivePkijs(
  engineName: string,
  crypto: WebCrypto,
  scenario: Scenario,
  requests: string[],
  caKeyPem: string,
  caCertPem: string,
): Promise<Rate> {
  const engine = new pkijs.CryptoEngine({ name: engineName, crypto: crypto as never });
  pkijs.setEngine(engineName, engine);
  const isEc = scenario.caKey.startsWith("ecdsa");
  const algorithm = isEc
    ? { name: "ECDSA", namedCurve: "P-256" }
    : { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const caKey = await crypto.subtle.importKey("pkcs8", pemToDer(caKeyPem), algorithm, false, ["sign"]);
  // pkijs's types name the DOM CryptoKey; Node's is the same object.
  const caCertificate = pkijs.Certificate.fromBER(pemToDer(caCertPem));
  const contender = await nodeContender(`naive pkijs (${engineName})`, async (index) => {
    const request = pkijs.CertificationRequest.fromBER(pemToDer(requests[index % requests.length]!));
    if (!(await request.verify(engine))) throw new Error("request does not verify");
    const certificate = new pkijs.Certificate();
    certificate.version = 2;
    certificate.serialNumber = new asn1js.Integer({
      valueHex: webcrypto.getRandomValues(new Uint8Array(16)).map((b, i) => (i === 0 ? b & 0x7f : b)),
    });
    certificate.issuer = caCertificate.subject;
    certificate.subject = request.subject;
    certificate.notBefore.value = new Date(Date.now() - 300_000);
    certificate.notAfter.value = new Date(Date.now() + 86_400_000);
    certificate.subjectPublicKeyInfo = request.subjectPublicKeyInfo;
    certificate.extensions = [
      new pkijs.Extension({
        extnID: "2.5.29.19",
        critical: true,
        extnValue: new pkijs.BasicConstraints({ cA: false }).toSchema().toBER(false),
      }),
    ];
    await certificate.sign(caKey as never, "SHA-256", engine);
    return certificate.toSchema(true).toBER(false);
  });
  return (await measureInterleaved([contender]))[0]!;
}

/** The Go program, built (or reused) in $CSR_SIGNER_CACHE like the testbin. */
function goBinary(): string {
  execFileSync(buildScript, ["x509-sign"], { stdio: ["ignore", "inherit", "inherit"] });
  return testBinary("X509_SIGN_BIN_DIR", "x509-sign");
}

/**
 * Starts Go's side on one line of JSON setup and waits for its warm-up sample. It inherits this
 * process's CPU affinity (taskset), so both share one core; GOMAXPROCS=1 keeps it single-threaded.
 */
async function goContender(
  binary: string,
  setup: object,
): Promise<Contender & { sampleChainPem: string; close(): void }> {
  const child = spawn(binary, [], {
    env: { ...process.env, GOMAXPROCS: "1" },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<never>((_, reject) =>
    child.on("exit", (code) => reject(new Error(`x509-sign exited with ${code}`))),
  );
  exited.catch(() => undefined); // observed through nextLine; a clean exit after close() is expected
  const nextLine = async (): Promise<unknown> => {
    const line = await Promise.race([lines.next(), exited]);
    if (line.done) throw new Error("x509-sign closed its output");
    return JSON.parse(line.value as string) as unknown;
  };
  child.stdin.write(JSON.stringify(setup) + "\n");
  const ready = (await nextLine()) as { sampleChainPem: string; goVersion: string };
  return {
    name: `Go ${ready.goVersion} crypto/x509`,
    sampleChainPem: ready.sampleChainPem,
    async runSlice(seconds) {
      child.stdin.write(JSON.stringify({ seconds }) + "\n");
      return (await nextLine()) as Slice;
    },
    close: () => child.stdin.end(),
  };
}

/**
 * What must match for "the same work": issuer, subject, public key, signature algorithm, every
 * extension (id, criticality, value) and the chain after the leaf. Serial, validity and the
 * signature differ by nature.
 */
function certificateProfile(chainPem: string): string {
  const [leaf, ...chain] = decodeCertificatesPem(chainPem, "issued chain");
  const tbs = decodeDer(leaf!, { maxDepth: 24, maxNodes: 8192 }).children[0]!;
  const [, , signatureAlgorithm, issuer, , subject, spki, extensions] = tbs.children;
  const hex = (node: DerNode | undefined): string => Buffer.from(node?.encoded ?? []).toString("hex");
  const extensionList = extensions!.children[0]!.children.map(hex).sort();
  return JSON.stringify({
    tbs: [signatureAlgorithm, issuer, subject, spki].map(hex),
    extensionList,
    chain: chain.map((der) => Buffer.from(der).toString("hex")),
  });
}

const go = onlyOurs || onlyCaType === "pkcs11" ? undefined : goBinary();
const rows: string[] = [];
for (const scenario of scenarios) {
  if (onlyCaType && !scenario.caKey.startsWith(onlyCaType)) continue;
  process.stderr.write(`${scenario.label}\n`);
  const ca = await makeTestCertificateAuthority({
    rootKeyType: scenario.caKey,
    intermediateKeyType: scenario.caKey,
  });
  const keys = Array.from({ length: distinctKeys }, () => testKey(scenario.requestKey, true));
  const requests = Array.from({ length: distinctRequests }, (_, i) =>
    buildTestCertificateRequest({
      key: keys[i % distinctKeys]!,
      subject: [{ type: "O", value: "" }],
      subjectAltNames: { uri: [`spiffe://cluster.local/ns/tenant-${i}/sa/default`] },
    }),
  );
  const grant = {
    subject: [],
    subjectAltNames: { dns: [], ip: [], uri: ["spiffe://cluster.local/ns/tenant/sa/default"], email: [] },
    usages: ["digital signature", "key encipherment", "server auth", "client auth"] as const,
    lifetime: { defaultSeconds: 86400, maximumSeconds: 86400 },
    includeRoot: false,
  };

  const issue = async (index: number): Promise<string> => {
    const request = parseCertificateRequest(requests[index % requests.length]!);
    return (await issueLeafCertificate(ca.authority, request, { ...grant, usages: [...grant.usages] }))
      .chainPem;
  };
  const oursSide = await nodeContender("csr-signer (parse+verify+issue+sign+PEM)", issue);
  if (!go) {
    await measureInterleaved([oursSide]);
    continue;
  }

  const goSide = await goContender(go, {
    caCertificatePem: ca.files["ca-cert.pem"],
    caKeyPem: ca.files["ca-key.pem"],
    chainPem: ca.authority.chainPem,
    requests,
    uris: grant.subjectAltNames.uri,
    lifetimeSeconds: grant.lifetime.defaultSeconds,
    chainNotAfter: ca.authority.notAfter.toISOString(),
  });
  // Go's sample is its last warm-up certificate, for request 199; ours for the same request.
  if (certificateProfile(goSide.sampleChainPem) !== certificateProfile(await issue(199))) {
    throw new Error("Go's certificate differs from csr-signer's in profile: not the same work");
  }

  // The floor: the same cryptography (import the requester's key, verify its signature over a
  // request-sized message, sign a certificate-sized message with the CA key) and no ASN.1 at all.
  // The key is imported from PEM text, node:crypto's cheapest way in (see src/pki/certificate-request.ts).
  const caPrivateKey = createPrivateKey(ca.files["ca-key.pem"]!);
  const requestInfo = new Uint8Array(300).fill(7);
  const tbsCertificate = new Uint8Array(450).fill(9);
  const floorInputs = keys.map((key) => ({
    spkiPem: createPublicKey(key).export({ format: "pem", type: "spki" }) as string,
    signature: sign("sha256", requestInfo, key),
  }));
  const floorSide = await nodeContender("floor: node:crypto key import + verify + sign", (index) => {
    const input = floorInputs[index % distinctKeys]!;
    const publicKey = createPublicKey(input.spkiPem);
    if (!verify("sha256", requestInfo, publicKey, input.signature))
      throw new Error("floor signature does not verify");
    return sign("sha256", tbsCertificate, caPrivateKey);
  });
  const [ourRate, goRate, floorRate] = (await measureInterleaved([oursSide, goSide, floorSide])) as [
    Rate,
    Rate,
    Rate,
  ];
  goSide.close();

  let pkijsColumns = ["-", "-", "-"];
  if (!skipPkijs) {
    const native = await naivePkijs(
      "node-webcrypto",
      webcrypto,
      scenario,
      requests,
      ca.files["ca-key.pem"]!,
      ca.files["ca-cert.pem"]!,
    );
    const peculiar = await naivePkijs(
      "peculiar-webcrypto",
      new PeculiarCrypto() as unknown as WebCrypto,
      scenario,
      requests,
      ca.files["ca-key.pem"]!,
      ca.files["ca-cert.pem"]!,
    );
    pkijsColumns = [
      native.perCpuSecond.toFixed(0),
      peculiar.perCpuSecond.toFixed(0),
      `${(ourRate.perCpuSecond / native.perCpuSecond).toFixed(1)}x`,
    ];
  }
  const ours = ourRate.perCpuSecond;
  rows.push(
    [
      scenario.label,
      ours.toFixed(0),
      goRate.perCpuSecond.toFixed(0),
      `**${(ours / goRate.perCpuSecond).toFixed(2)}x**`,
      `${ourRate.perSecond.toFixed(0)} / ${goRate.perSecond.toFixed(0)} = ${(ourRate.perSecond / goRate.perSecond).toFixed(2)}x`,
      floorRate.perCpuSecond.toFixed(0),
      (ours / floorRate.perCpuSecond).toFixed(2),
      ...pkijsColumns,
    ].join(" | "),
  );
}

/**
 * The CA key in a SoftHSM2 token: the same issuance path and requests as the ECDSA scenario, one
 * CA signing with a P-256 key in memory, the other with a P-256 key generated in the token (its
 * certificate signed by the same root), interleaved. The token signs in its module's worker thread
 * (src/pki/pkcs11/module-worker.ts); its CPU time counts, so "per CPU-second" is the whole cost of a certificate.
 */
const pkcs11Rows: string[] = [];
if (!onlyCaType || onlyCaType === "pkcs11") {
  process.stderr.write("ECDSA P-256 CA key in SoftHSM2 (PKCS#11) vs in memory\n");
  const ca = await makeTestCertificateAuthority({
    rootKeyType: "ecdsa-p256",
    intermediateKeyType: "ecdsa-p256",
  });
  const token = createSoftHsmToken("csr-signer-bench");
  const tokenKey = await generatePkcs11KeyPair(
    { modulePath: token.modulePath, tokenLabel: token.tokenLabel, keyLabel: "bench-ca" },
    token.userPin,
    "ecdsa-p256",
  );
  const tokenSpki = new Uint8Array(tokenKey.publicKey.export({ format: "der", type: "spki" }));
  const tokenCertificate = await signIntermediateCertificate(
    { certificate: ca.root.certificate, signingKey: ca.root.signingKey },
    {
      subject: [{ type: "CN", value: "bench HSM intermediate" }],
      subjectPublicKeyInfo: tokenSpki,
      subjectPublicKey: readBitStringBytes(expectSequence(decodeDer(tokenSpki), "spki").children[1], "key"),
    },
    { lifetimeSeconds: 365 * 86400 },
  );
  const tokenAuthority = {
    ...ca.authority,
    signingCertificate: tokenCertificate,
    signingKey: tokenKey,
    keyIdentifier: tokenCertificate.subjectKeyIdentifier!,
    chainPem: tokenCertificate.pem,
  };
  const keys = Array.from({ length: distinctKeys }, () => testKey("ecdsa-p256", true));
  const requests = Array.from({ length: distinctRequests }, (_, i) =>
    buildTestCertificateRequest({
      key: keys[i % distinctKeys]!,
      subject: [{ type: "O", value: "" }],
      subjectAltNames: { uri: [`spiffe://cluster.local/ns/tenant-${i}/sa/default`] },
    }),
  );
  const grant = {
    subject: [],
    subjectAltNames: { dns: [], ip: [], uri: ["spiffe://cluster.local/ns/tenant/sa/default"], email: [] },
    usages: ["digital signature", "key encipherment", "server auth", "client auth"] as const,
    lifetime: { defaultSeconds: 86400, maximumSeconds: 86400 },
    includeRoot: false,
  };
  const issueWith = (authority: typeof ca.authority) => async (index: number) => {
    const request = parseCertificateRequest(requests[index % requests.length]!);
    return (await issueLeafCertificate(authority, request, { ...grant, usages: [...grant.usages] })).chainPem;
  };
  // One certificate of the token key, checked by node:crypto before anything is measured.
  const [sample] = decodeCertificatesPem(await issueWith(tokenAuthority)(0), "sample");
  if (!new X509Certificate(sample!).verify(tokenKey.publicKey))
    throw new Error("the token's certificate does not verify");
  const [softwareRate, tokenRate] = (await measureInterleaved([
    await nodeContender("csr-signer, CA key in memory", issueWith(ca.authority)),
    await nodeContender("csr-signer, CA key in SoftHSM2 (PKCS#11)", issueWith(tokenAuthority)),
  ])) as [Rate, Rate];
  await tokenKey.close();
  pkcs11Rows.push(
    [
      "ECDSA P-256 CA, P-256 CSRs",
      softwareRate.perCpuSecond.toFixed(0),
      tokenRate.perCpuSecond.toFixed(0),
      `**${(tokenRate.perCpuSecond / softwareRate.perCpuSecond).toFixed(2)}x**`,
      `${softwareRate.perSecond.toFixed(0)} / ${tokenRate.perSecond.toFixed(0)} = ${(tokenRate.perSecond / softwareRate.perSecond).toFixed(2)}x`,
    ].join(" | "),
  );
}

const cpu = cpus()[0]?.model ?? "unknown CPU";
const commit = sourceRevision();
console.log(
  `Machine: ${cpu}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; Node ${process.version}; commit ${commit}; ${secondsPerCase} s per case, one core (single thread).\n`,
);
console.log(
  "Certificates per CPU-second (the process's user + system time, all threads) unless marked wall clock.\n",
);
console.log(
  "| scenario | csr-signer | Go crypto/x509 | csr-signer / Go | wall clock: csr-signer / Go per second | node:crypto floor | ratio to floor | naive pkijs, native WebCrypto | naive pkijs, @peculiar/webcrypto | csr-signer vs naive pkijs |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|");
for (const row of rows) console.log(`| ${row} |`);
if (pkcs11Rows.length > 0) {
  console.log("\nCA key in a PKCS#11 token (SoftHSM2) vs in memory, the same issuance path:\n");
  console.log(
    "| scenario | key in memory | key in SoftHSM2 (PKCS#11) | **SoftHSM2 / memory** | wall clock: memory / SoftHSM2 per second |",
  );
  console.log("|---|---|---|---|---|");
  for (const row of pkcs11Rows) console.log(`| ${row} |`);
}
