/**
 * A Signer whose CA key is in a PKCS#11 token, through SignerRegistry and TokenKeys with a token
 * stand-in (a software key behind the backend interface; the real token is SoftHSM in
 * test/integration/pkcs11*.test.ts): the WaitingForCertificate runbook state, a chain for another
 * key, a key file beside a token key, the PIN from a file (re-read, never shown), a wrong PIN, a
 * token that vanishes while signing, and sessions closed when the Signer goes.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import type { SecretObject } from "../../../src/controller/ca-source.js";
import { SignerRegistry } from "../../../src/controller/signer-registry.js";
import {
  TokenKeys,
  type ClosableSigningKey,
  type Pkcs11KeyReason,
  type TokenKeyBackend,
} from "../../../src/controller/token-keys.js";
import type { SignerObject } from "../../../src/api/signer.js";
import { CacertsFiles } from "../../../src/pki/ca-layouts.js";
import type { SigningKey } from "../../../src/pki/signing-key.js";
import { makeTestCertificateAuthority, type TestCertificateAuthority } from "../../support/pki.js";

class TokenError extends Error {
  constructor(
    readonly reason: Pkcs11KeyReason,
    message: string,
  ) {
    super(message);
  }
}

/** A token holding `key`, with a PIN; it can vanish and come back. */
class StandInToken implements TokenKeyBackend {
  pin = "1234";
  present = true;
  opens = 0;
  open_ = 0;
  requests = 0;
  constructor(public key: SigningKey) {}

  async open(_source: unknown, pin: string): Promise<ClosableSigningKey> {
    this.opens++;
    if (!this.present) throw new TokenError("Pkcs11TokenNotFound", "no token labelled mesh-ca");
    // A careless backend echoing the PIN: the controller must cut it out.
    if (pin !== this.pin) throw new TokenError("Pkcs11PinIncorrect", `C_Login failed for PIN ${pin}`);
    const token = this; // eslint-disable-line @typescript-eslint/no-this-alias
    const key = this.key;
    let closed = false;
    this.open_++;
    return {
      publicKey: key.publicKey,
      signatureAlgorithm: key.signatureAlgorithm,
      description: key.description,
      async sign(data: Uint8Array) {
        if (!token.present || closed) throw new TokenError("Pkcs11TokenUnavailable", "CKR_DEVICE_REMOVED");
        return key.sign(data);
      },
      async close() {
        if (!closed) token.open_--;
        closed = true;
      },
    };
  }

  async certificateRequest(): Promise<Uint8Array> {
    this.requests++;
    return new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]);
  }

  reasonOf(error: unknown): Pkcs11KeyReason | undefined {
    return error instanceof TokenError ? error.reason : undefined;
  }
}

function secretOf(files: Record<string, string>): SecretObject {
  return {
    metadata: { name: "chain", namespace: "csr-signer" },
    data: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
  };
}

/** The chain files of `ca` without its key file: what goes into the Secret when the key is in a token. */
function chainOnly(ca: TestCertificateAuthority): Record<string, string> {
  const { [CacertsFiles.key]: _key, ...rest } = ca.files;
  return rest;
}

describe("SignerRegistry with a CA key in a PKCS#11 token (stand-in token)", function () {
  this.timeout(20_000);
  let dir: string;
  let pinFile: string;
  let secret: SecretObject | undefined;
  let ca: TestCertificateAuthority;
  let token: StandInToken;
  let settled: () => Promise<string>;
  let waiters: ((name: string) => void)[];
  let tokenKeys: TokenKeys;
  let clock: number;
  const signer = (): SignerObject => ({
    metadata: { name: "mesh", generation: 1 },
    spec: {
      signerName: "example.com/mesh",
      certificateAuthority: {
        secretName: "chain",
        pkcs11: { module: "/hsm.so", tokenLabel: "mesh-ca", keyLabel: "ca", pinFile },
      },
      issuance: { defaultDuration: "1h", maxDuration: "1h" },
      policy: { requesters: { users: ["a"] }, subject: { organizations: ["Example"] } },
    },
  });
  let objects: SignerObject[];

  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), "token-keys-"));
    pinFile = path.join(dir, "pin");
    writeFileSync(pinFile, "1234\n");
    ca = await makeTestCertificateAuthority();
    token = new StandInToken(ca.intermediate.signingKey);
    secret = undefined;
    clock = Date.now();
    waiters = [];
    settled = () => new Promise((resolve) => waiters.push(resolve));
    tokenKeys = new TokenKeys(
      token,
      (name) => waiters.shift()?.(name),
      () => new Date(clock),
      {
        initialRetryMs: 1000,
        maximumRetryMs: 8000,
        incorrectPinRetryMs: 300_000,
        probeIntervalMs: 3_600_000, // probes only where a test asks for them (below)
      },
    );
    objects = [signer()];
  });
  afterEach(async () => {
    await tokenKeys.closeAll();
    rmSync(dir, { recursive: true, force: true });
  });

  const registry = (): SignerRegistry =>
    new SignerRegistry(
      {
        signers: () => objects,
        secret: (_ns, name) => (name === "chain" ? secret : undefined),
        namespaces: () => [],
      },
      "csr-signer",
      () => new Date(clock),
      undefined,
      tokenKeys,
    );
  const ready = (r: SignerRegistry) => r.desiredStatus("mesh")?.conditions?.find((c) => c.type === "Ready");
  /** Rebuilds until the token open started by the first rebuild has settled. */
  async function open(r: SignerRegistry): Promise<void> {
    const done = settled();
    r.rebuild();
    await done;
    r.rebuild();
  }

  it("waits for a certificate with the token key's CSR in status, then signs with the chain for that key", async () => {
    const r = registry();
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem?.reason).to.equal("Pkcs11KeyOpening");
    await settled();
    r.rebuild();
    const waiting = r.forObjectName("mesh")!;
    expect(waiting.problem?.reason).to.equal("WaitingForCertificate");
    expect(waiting.problem?.message).to.include("Secret csr-signer/chain").and.include("token mesh-ca");
    const status = { ...r.desiredStatus("mesh") };
    expect(status.pendingCertificateRequest?.pem).to.match(
      /^-----BEGIN CERTIFICATE REQUEST-----\nMAMCAQE=\n/,
    );
    expect(status.pendingCertificateRequest?.key).to.equal(
      "ECDSA-P-256/SHA-256 in token mesh-ca (key label ca) via /hsm.so",
    );
    expect(status.pendingCertificateRequest?.publicKeyFingerprintSha256).to.match(/^[0-9a-f]{64}$/);

    secret = secretOf(chainOnly(ca));
    r.rebuild();
    r.markPublished("mesh");
    expect(r.rebuild()).to.deep.equal(["example.com/mesh"]);
    const signing = r.forObjectName("mesh")!;
    expect(signing.problem).to.equal(undefined);
    expect(signing.authority!.signingKey.publicKey.equals(ca.intermediate.signingKey.publicKey)).to.equal(
      true,
    );
    expect(await signing.authority!.signingKey.sign(new Uint8Array([1]))).to.have.length.greaterThan(8);
    expect(r.desiredStatus("mesh")?.pendingCertificateRequest).to.equal(undefined);
    expect(token.opens).to.equal(1);
    expect(token.requests).to.equal(1);
  });

  it("refuses a chain for another key (CertificateAuthorityKeyMismatch) and a key file beside the token key", async () => {
    const other = await makeTestCertificateAuthority({ name: "other" });
    secret = secretOf(chainOnly(other));
    const r = registry();
    await open(r);
    const mismatch = r.forObjectName("mesh")!;
    expect(mismatch.problem?.reason).to.equal("CertificateAuthorityKeyMismatch");
    expect(mismatch.problem?.message).to.include("is not for the key in token mesh-ca");
    expect(r.desiredStatus("mesh")?.pendingCertificateRequest?.pem).to.include("CERTIFICATE REQUEST");

    secret = secretOf(ca.files); // with ca-key.pem
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem?.reason).to.equal("CertificateAuthorityUnexpectedKeyFile");
    expect(r.forObjectName("mesh")!.problem?.message).to.include("ca-key.pem is present");
  });

  it("reads the PIN from its file on every rebuild: a new PIN the token refuses leaves the old session signing (Degraded Pkcs11PinIncorrect, never shown); the right one swaps sessions", async () => {
    secret = secretOf(chainOnly(ca));
    const r = registry();
    await open(r);
    r.markPublished("mesh");
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem).to.equal(undefined);
    const oldKey = r.forObjectName("mesh")!.authority!.signingKey;

    writeFileSync(pinFile, "9999"); // the file changed before the token did
    await open(r);
    const refused = r.forObjectName("mesh")!;
    expect(refused.problem, "still signing").to.equal(undefined);
    expect(refused.authority?.signingKey).to.equal(oldKey);
    expect(await refused.authority!.signingKey.sign(new Uint8Array([1]))).to.have.length.greaterThan(8);
    expect(refused.degraded?.reason).to.equal("Pkcs11PinIncorrect");
    expect(refused.degraded?.message).to.equal(
      "the token refused the new PIN, still signing with the session opened with the previous one: C_Login failed for PIN (PIN)",
    );
    expect(JSON.stringify(r.desiredStatus("mesh"))).not.to.include("9999");
    expect(ready(r)).to.include({ status: "True" });
    expect(token.open_, "the session of the old PIN stays open").to.equal(1);
    // Not tried again with the same wrong PIN before incorrectPinRetryMs (lockout counters).
    clock += 60_000;
    const opens = token.opens;
    r.rebuild();
    expect(token.opens).to.equal(opens);

    token.pin = "5678";
    writeFileSync(pinFile, "5678\n");
    await open(r);
    const swapped = r.forObjectName("mesh")!;
    expect(swapped.problem).to.equal(undefined);
    expect(swapped.degraded).to.equal(undefined);
    expect(swapped.authority!.signingKey).not.to.equal(oldKey);
    expect(ready(r)).to.include({ status: "True" });
    expect(token.open_, "the old session is closed once the new one is open").to.equal(1);

    rmSync(pinFile);
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem).to.deep.include({ reason: "Pkcs11PinUnavailable" });
    expect(r.forObjectName("mesh")!.problem?.message).to.include(`file ${pinFile} cannot be read: ENOENT`);
  });

  it("a token that vanishes while signing: the Signer is not ready, the token is retried with backoff, and signs again", async () => {
    secret = secretOf(chainOnly(ca));
    const r = registry();
    await open(r);
    r.markPublished("mesh");
    r.rebuild();
    const key = r.forObjectName("mesh")!.authority!.signingKey;
    token.present = false;
    const error = await key.sign(new Uint8Array([1])).then(
      () => undefined,
      (e: unknown) => e,
    );
    const rebuildAsked = settled();
    expect(r.signingKeyFailed("mesh", key, error)).to.deep.equal({
      reason: "Pkcs11TokenUnavailable",
      message: "CKR_DEVICE_REMOVED",
    });
    expect(await rebuildAsked).to.equal("mesh");
    expect(r.signingKeyFailed("mesh", key, new Error("not a token error"))).to.equal(undefined);
    r.rebuild();
    const down = r.forObjectName("mesh")!;
    expect(down.problem?.reason).to.equal("Pkcs11TokenUnavailable");
    expect(down.recheckAt?.getTime()).to.equal(clock + 1000);
    // The retry finds no token: backoff doubles.
    clock += 1000;
    await open(r);
    expect(r.forObjectName("mesh")!.problem?.reason).to.equal("Pkcs11TokenNotFound");
    expect(r.forObjectName("mesh")!.recheckAt?.getTime()).to.equal(clock + 2000);
    token.present = true;
    clock += 2000;
    await open(r);
    const back = r.forObjectName("mesh")!;
    expect(back.problem).to.equal(undefined);
    expect(back.authority!.signingKey).not.to.equal(key);
    expect(await back.authority!.signingKey.sign(new Uint8Array([1]))).to.have.length.greaterThan(8);
  });

  it("a token lost while idle is noticed by the probe signature: the Signer is not ready without any CSR", async () => {
    await tokenKeys.closeAll();
    tokenKeys = new TokenKeys(
      token,
      (name) => waiters.shift()?.(name),
      () => new Date(clock),
      {
        initialRetryMs: 1000,
        maximumRetryMs: 8000,
        incorrectPinRetryMs: 300_000,
        probeIntervalMs: 20,
      },
    );
    secret = secretOf(chainOnly(ca));
    const r = registry();
    await open(r);
    r.markPublished("mesh");
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem).to.equal(undefined);
    const noticed = settled();
    token.present = false;
    expect(await noticed).to.equal("mesh");
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem?.reason).to.equal("Pkcs11TokenUnavailable");
    expect(token.open_, "the broken session is closed").to.equal(0);
  });

  it("closes the session when the Signer is deleted", async () => {
    secret = secretOf(chainOnly(ca));
    const r = registry();
    await open(r);
    expect(token.open_).to.equal(1);
    objects = [];
    r.rebuild();
    await tokenKeys.closeAll();
    expect(token.open_).to.equal(0);
  });

  it("without PKCS#11 support, the Signer alone is not ready (Pkcs11ModuleLoadFailed)", () => {
    const r = new SignerRegistry(
      { signers: () => objects, secret: () => undefined, namespaces: () => [] },
      "csr-signer",
    );
    r.rebuild();
    expect(r.forObjectName("mesh")!.problem?.reason).to.equal("Pkcs11ModuleLoadFailed");
  });
});
