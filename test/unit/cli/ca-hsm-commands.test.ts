import { execFileSync } from "node:child_process";
import { createPublicKey, randomBytes, X509Certificate } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { keyIdentifier, signCertificate } from "../../../src/pki/certificate-builder.js";
import { KeyUsageBit, parseCertificate } from "../../../src/pki/certificate.js";
import { generateSerialNumber, systemIssuanceEnvironment } from "../../../src/pki/issuance.js";
import { parseDistinguishedName } from "../../../src/pki/names.js";
import { encodePem } from "../../../src/pki/pem.js";
import { openPkcs11SigningKey, type Pkcs11SigningKey } from "../../../src/pki/pkcs11/index.js";
import { noSubjectAlternativeNames } from "../../../src/pki/subject-alternative-names.js";
import { runCliInProcess as cli } from "../../support/cli.js";
import { openssl } from "../../support/openssl.js";
import { opensslRequest, opensslText, opensslVerify } from "../../support/pki.js";
import { createSoftHsmToken, type SoftHsmToken } from "../../support/softhsm.js";
import { repositoryRoot } from "../../support/testbin.js";

describe("csr-signer CLI: a CA key in a PKCS#11 token (ca request, ca sign-intermediate)", function () {
  this.timeout(60_000);
  let dir: string;
  let token: SoftHsmToken;
  let pinFile: string;
  const opened: Pkcs11SigningKey[] = [];
  const tokenFlags = (): string[] => [
    "--pkcs11-module",
    token.modulePath,
    "--pkcs11-token-label",
    token.tokenLabel,
    "--pin-file",
    pinFile,
  ];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "csr-signer-hsm-cli-"));
    token = createSoftHsmToken();
    pinFile = join(dir, "pin");
    writeFileSync(pinFile, `${token.userPin}\n`, { mode: 0o600 });
  });
  afterEach(async () => {
    for (const key of opened.splice(0)) await key.close();
  });

  it("the runbook: root, key generated in the token with its request, root signs, the chain verifies, the token key signs under it", async () => {
    const root = await cli([
      "ca",
      "root",
      "--out",
      join(dir, "root"),
      "--subject",
      "O=Example,CN=Example Root",
    ]);
    expect(root.exitCode, root.stderr).to.equal(0);

    const requested = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "mesh-ca",
      "--key-type",
      "ecdsa-p256",
      "--subject",
      "O=Example,CN=cluster-1 intermediate",
      "--out",
      join(dir, "intermediate.csr"),
    ]);
    expect(requested.exitCode, requested.stderr).to.equal(0);
    expect(requested.stdout).to.contain("generated a key in the token (ECDSA-P-256/SHA-256 (PKCS#11))");
    expect(requested.stdout + requested.stderr).not.to.contain(token.userPin);
    const requestPem = readFileSync(join(dir, "intermediate.csr"), "utf8");
    expect(openssl(["req", "-verify", "-noout", "-subject"], requestPem)).to.match(/cluster-1 intermediate/);

    const signed = await cli([
      "ca",
      "sign-intermediate",
      "--root",
      join(dir, "root"),
      "--csr",
      join(dir, "intermediate.csr"),
      "--out",
      join(dir, "cacerts"),
      "--lifetime",
      "2y",
    ]);
    expect(signed.exitCode, signed.stderr).to.equal(0);
    expect(readdirSync(join(dir, "cacerts")).sort()).to.deep.equal([
      "ca-cert.pem",
      "cert-chain.pem",
      "root-cert.pem",
    ]);
    const caCert = readFileSync(join(dir, "cacerts", "ca-cert.pem"), "utf8");
    const rootCert = readFileSync(join(dir, "cacerts", "root-cert.pem"), "utf8");
    const chain = readFileSync(join(dir, "cacerts", "cert-chain.pem"), "utf8");
    expect(rootCert).to.equal(readFileSync(join(dir, "root", "root-cert.pem"), "utf8"));
    expect(chain).to.equal(caCert + rootCert);
    expect(opensslVerify(chain, rootCert)).to.match(/: OK/);
    const inspected = await cli(["ca", "inspect", join(dir, "cacerts")]);
    expect(inspected.exitCode, inspected.stdout).to.equal(0);
    expect(inspected.stdout)
      .to.contain("no key file: the key is kept elsewhere")
      .and.to.contain("no warnings");
    const text = opensslText(caCert);
    expect(text).to.match(/CA:TRUE, pathlen:0/);
    expect(text).to.match(/Subject: O\s?=\s?Example, CN\s?=\s?cluster-1 intermediate/);
    const intermediate = new X509Certificate(caCert);
    expect(Date.parse(intermediate.validTo) - Date.parse(intermediate.validFrom)).to.equal(
      (2 * 365 * 86400 + 300) * 1000,
    );

    // The certificate is for the token's key: a certificate that key signs verifies up to the root.
    const key = await openPkcs11SigningKey(
      { modulePath: token.modulePath, tokenLabel: token.tokenLabel, keyLabel: "mesh-ca" },
      token.userPin,
    );
    opened.push(key);
    expect(intermediate.publicKey.equals(key.publicKey)).to.equal(true);
    const parsedIntermediate = parseCertificate(intermediate.raw);
    const { csrPem } = opensslRequest("ec", "/CN=workload", []);
    const leafKey = createPublicKey(openssl(["req", "-pubkey", "-noout"], csrPem));
    const leafSpki = new Uint8Array(leafKey.export({ format: "der", type: "spki" }));
    const now = Date.now();
    const leaf = await signCertificate(
      {
        serialNumber: generateSerialNumber(systemIssuanceEnvironment.randomBytes),
        issuerName: parsedIntermediate.subjectNameDer,
        subject: parseDistinguishedName("CN=workload"),
        notBefore: new Date(Math.floor(now / 1000) * 1000 - 60_000),
        notAfter: new Date(Math.floor(now / 1000) * 1000 + 3_600_000),
        subjectPublicKeyInfo: leafSpki,
        subjectKeyIdentifier: keyIdentifier(leafSpki),
        authorityKeyIdentifier: parsedIntermediate.subjectKeyIdentifier!,
        subjectAltNames: noSubjectAlternativeNames,
        keyUsageBits: [KeyUsageBit.digitalSignature],
        extendedKeyUsageOids: [],
        basicConstraints: { ca: false },
      },
      key,
    );
    expect(opensslVerify(encodePem("CERTIFICATE", leaf) + chain, rootCert)).to.match(/: OK/);
  });

  it("--existing-key writes a new request for the key already in the token; without it the label is refused", async () => {
    const first = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "a.csr"),
    ]);
    expect(first.exitCode, first.stderr).to.equal(0);
    const again = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "b.csr"),
    ]);
    expect(again.exitCode).to.equal(1);
    expect(again.stderr).to.match(/already holds an object with this label\/id/);
    const existing = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--existing-key",
      "--out",
      join(dir, "b.csr"),
    ]);
    expect(existing.exitCode, existing.stderr).to.equal(0);
    const publicKeyOf = (file: string): string =>
      openssl(["req", "-pubkey", "-noout"], readFileSync(file, "utf8"));
    expect(publicKeyOf(join(dir, "b.csr"))).to.equal(publicKeyOf(join(dir, "a.csr")));
  });

  it("a wrong PIN fails with the reason and without the PIN; nothing is written", async () => {
    const wrongPin = `wrong-${randomBytes(4).toString("hex")}`;
    writeFileSync(pinFile, wrongPin);
    const run = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "x.csr"),
    ]);
    expect(run.exitCode).to.equal(1);
    expect(run.stderr).to.match(/PIN was refused/);
    expect(run.stderr).not.to.contain(wrongPin);
    expect(existsSync(join(dir, "x.csr"))).to.equal(false);
  });

  it("sign-intermediate refuses a request whose self-signature does not verify, and writes nothing", async () => {
    await cli(["ca", "root", "--out", join(dir, "root")]);
    const made = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "good.csr"),
    ]);
    expect(made.exitCode, made.stderr).to.equal(0);
    // Swap the subject's last character inside the signed part: the signature no longer matches.
    const der = Buffer.from(
      readFileSync(join(dir, "good.csr"), "utf8").replace(/-----[^-]+-----|\s/g, ""),
      "base64",
    );
    const at = der.indexOf(Buffer.from("intermediate CA"));
    der[at] = "J".charCodeAt(0);
    writeFileSync(join(dir, "tampered.csr"), encodePem("CERTIFICATE REQUEST", der));
    const run = await cli([
      "ca",
      "sign-intermediate",
      "--root",
      join(dir, "root"),
      "--csr",
      join(dir, "tampered.csr"),
      "--out",
      join(dir, "cacerts"),
    ]);
    expect(run.exitCode).to.equal(1);
    expect(run.stderr).to.match(/is not a valid certificate request \(InvalidSignature\)/);
    expect(existsSync(join(dir, "cacerts"))).to.equal(false);
  });

  it("an --out that exists is refused before the token is touched (no orphaned key); the label-taken error names --existing-key", async () => {
    writeFileSync(join(dir, "taken.csr"), "not yours\n");
    const refused = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "taken.csr"),
    ]);
    expect(refused.exitCode).to.equal(2);
    expect(refused.stderr).to.match(/taken\.csr already exists \(use --force to replace\)/);
    expect(readFileSync(join(dir, "taken.csr"), "utf8")).to.equal("not yours\n");
    // No key was generated under the label: a fresh request for it generates one.
    const made = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "a.csr"),
    ]);
    expect(made.exitCode, made.stderr).to.equal(0);
    expect(made.stdout).to.contain("generated a key in the token");
    const again = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "ca",
      "--out",
      join(dir, "b.csr"),
    ]);
    expect(again.exitCode).to.equal(1);
    expect(again.stderr).to.match(/already holds an object with this label\/id.*add --existing-key/);
  });

  it("--existing-key refuses a key the token may reveal or export unless --allow-extractable-key (then warns)", async () => {
    // A first request makes csr-signer's library see the token made after it was initialised.
    const seen = await cli([
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "first",
      "--out",
      join(dir, "first.csr"),
    ]);
    expect(seen.exitCode, seen.stderr).to.equal(0);
    // A key made by another application without CKA_SENSITIVE and with CKA_EXTRACTABLE.
    const { default: pkcs11js } = await import("pkcs11js");
    const library = new pkcs11js.PKCS11();
    library.load(token.modulePath);
    try {
      library.C_Initialize();
    } catch (error) {
      // Initialised already in this process (csr-signer's worker): the same library state.
      expect((error as Error).message).to.include("CKR_CRYPTOKI_ALREADY_INITIALIZED");
    }
    const slot = library
      .C_GetSlotList(true)
      .find((candidate) => library.C_GetTokenInfo(candidate).label.trim() === token.tokenLabel)!;
    const session = library.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      try {
        library.C_Login(session, pkcs11js.CKU_USER, token.userPin);
      } catch (error) {
        expect((error as Error).message).to.include("CKR_USER_ALREADY_LOGGED_IN");
      }
      const naming = [
        { type: pkcs11js.CKA_LABEL, value: "exportable" },
        { type: pkcs11js.CKA_TOKEN, value: true },
      ];
      library.C_GenerateKeyPair(
        session,
        { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
        [...naming, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") }],
        [
          ...naming,
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_SENSITIVE, value: false },
          { type: pkcs11js.CKA_EXTRACTABLE, value: true },
        ],
      );
    } finally {
      library.C_CloseSession(session);
    }
    const args = [
      "ca",
      "request",
      ...tokenFlags(),
      "--pkcs11-key-label",
      "exportable",
      "--existing-key",
      "--out",
      join(dir, "exportable.csr"),
    ];
    const refused = await cli(args);
    expect(refused.exitCode).to.equal(1);
    expect(refused.stderr).to.match(/not sensitive .* and extractable .*--allow-extractable-key/);
    expect(existsSync(join(dir, "exportable.csr"))).to.equal(false);
    const accepted = await cli([...args, "--allow-extractable-key"]);
    expect(accepted.exitCode, accepted.stderr).to.equal(0);
    expect(accepted.stderr).to.match(/^warning: the existing key is not sensitive/);
    expect(existsSync(join(dir, "exportable.csr"))).to.equal(true);
  });

  for (const [keyName, keyArgs] of [
    ["RSA-1024", ["-newkey", "rsa:1024"]],
    ["secp256k1", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"]],
  ] as const) {
    it(`sign-intermediate refuses a ${keyName} request (not a CA key type) and writes nothing`, async () => {
      await cli(["ca", "root", "--out", join(dir, "root")]);
      execFileSync(
        "openssl",
        ["req", "-new", ...keyArgs, "-nodes", "-subj", "/CN=weak", "-keyout", "weak.key", "-out", "weak.csr"],
        { cwd: dir, stdio: "ignore" },
      );
      const run = await cli([
        "ca",
        "sign-intermediate",
        "--root",
        join(dir, "root"),
        "--csr",
        join(dir, "weak.csr"),
        "--out",
        join(dir, "cacerts"),
      ]);
      expect(run.exitCode).to.equal(1);
      expect(run.stderr).to.match(/an intermediate CA key must be one of ecdsa-p256, ecdsa-p384, rsa-2048/);
      expect(existsSync(join(dir, "cacerts"))).to.equal(false);
    });
  }

  const usageMistakes: [string, string[], RegExp][] = [
    [
      "no module",
      [
        "ca",
        "request",
        "--pkcs11-token-label",
        "t",
        "--pkcs11-key-label",
        "k",
        "--pin-file",
        "p",
        "--out",
        "o",
      ],
      /--pkcs11-module is required/,
    ],
    [
      "token by label and slot",
      [
        "ca",
        "request",
        "--pkcs11-module",
        "m",
        "--pkcs11-token-label",
        "t",
        "--pkcs11-slot",
        "1",
        "--pkcs11-key-label",
        "k",
        "--pin-file",
        "p",
        "--out",
        "o",
      ],
      /exactly one of --pkcs11-token-label and --pkcs11-slot/,
    ],
    [
      "no key name",
      ["ca", "request", "--pkcs11-module", "m", "--pkcs11-token-label", "t", "--pin-file", "p", "--out", "o"],
      /--pkcs11-key-label, --pkcs11-key-id or both/,
    ],
    [
      "a key id that is not hex",
      [
        "ca",
        "request",
        "--pkcs11-module",
        "m",
        "--pkcs11-token-label",
        "t",
        "--pkcs11-key-id",
        "xyz",
        "--pin-file",
        "p",
        "--out",
        "o",
      ],
      /hexadecimal/,
    ],
    [
      "an unknown key type",
      [
        "ca",
        "request",
        "--pkcs11-module",
        "m",
        "--pkcs11-token-label",
        "t",
        "--pkcs11-key-label",
        "k",
        "--pin-file",
        "p",
        "--out",
        "o",
        "--key-type",
        "dsa",
      ],
      /--key-type must be one of/,
    ],
    [
      "sign-intermediate without --csr",
      ["ca", "sign-intermediate", "--root", "r", "--out", "o"],
      /--csr is required/,
    ],
    [
      "a lifetime under a day",
      ["ca", "sign-intermediate", "--root", "r", "--csr", "c", "--out", "o", "--lifetime", "1h"],
      /at least 1d/,
    ],
  ];
  for (const [name, args, message] of usageMistakes) {
    it(`usage mistake, exit 2: ${name}`, async () => {
      const run = await cli(args);
      expect(run.exitCode).to.equal(2);
      expect(run.stderr).to.match(message);
    });
  }

  it("--help describes both commands and the top help lists them", async () => {
    expect((await cli(["ca", "request", "--help"])).stdout)
      .to.contain("--pkcs11-token-label")
      .and.to.contain("never extractable");
    expect((await cli(["ca", "sign-intermediate", "--help"])).stdout).to.contain(
      "without a key: ca-cert.pem, root-cert.pem, cert-chain.pem",
    );
    expect((await cli(["--help"])).stdout)
      .to.contain("ca request")
      .and.to.contain("ca sign-intermediate");
  });

  it("the bundle (hack/bundle.mjs) carries pkcs11-worker.mjs and pkcs11.node beside it and generates in the token with no node_modules around", () => {
    const built = mkdtempSync(join(tmpdir(), "csr-signer-bundle-"));
    try {
      execFileSync(process.execPath, [
        join(repositoryRoot, "hack", "bundle.mjs"),
        `--outfile=${join(built, "csr-signer.mjs")}`,
      ]);
      // Only the three files the image copies, in a folder with no node_modules on the resolution path.
      const image = join(built, "image", "dist");
      mkdirSync(image, { recursive: true });
      for (const file of ["csr-signer.mjs", "pkcs11-worker.mjs", "pkcs11.node"])
        copyFileSync(join(built, file), join(image, file));
      const output = execFileSync(
        process.execPath,
        [
          join(image, "csr-signer.mjs"),
          "ca",
          "request",
          ...tokenFlags(),
          "--pkcs11-key-label",
          "bundled",
          "--out",
          join(dir, "bundled.csr"),
        ],
        { cwd: join(built, "image"), encoding: "utf8", env: { ...process.env, NODE_PATH: "" } },
      );
      expect(output).to.contain("generated a key in the token");
      expect(openssl(["req", "-verify", "-noout"], readFileSync(join(dir, "bundled.csr"), "utf8"))).to.equal(
        "",
      );
    } finally {
      rmSync(built, { recursive: true, force: true });
    }
  });
});
