/**
 * SoftHSM2 tokens for tests: the real PKCS#11 library, in a temporary folder of this process.
 *
 * The library reads SOFTHSM2_CONF once, at C_Initialize, and csr-signer initialises a module once
 * per process, so every token of a test process lives in one temporary token directory with its
 * own softhsm2.conf (set in process.env before the first token is made). Tokens differ by label.
 * The binaries come from $SOFTHSM2_MODULE / $SOFTHSM2_UTIL, else from what hack/softhsm2/ensure.sh
 * prints (it provides SoftHSM2 when missing; `make test` runs it first).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pkcs11js from "pkcs11js";
import { repositoryRoot } from "./testbin.js";

export interface SoftHsmBinaries {
  /** libsofthsm2.so, the PKCS#11 module. */
  readonly modulePath: string;
  /** softhsm2-util, to make and remove tokens. */
  readonly utilPath: string;
}

let binaries: SoftHsmBinaries | undefined;

export function softHsmBinaries(): SoftHsmBinaries {
  if (binaries) return binaries;
  let modulePath = process.env.SOFTHSM2_MODULE;
  let utilPath = process.env.SOFTHSM2_UTIL;
  if (!modulePath || !utilPath) {
    const printed = execFileSync(path.join(repositoryRoot, "hack/softhsm2/ensure.sh"), { encoding: "utf8" });
    const value = (name: string): string | undefined =>
      printed
        .split("\n")
        .find((line) => line.startsWith(`${name}=`))
        ?.slice(name.length + 1);
    modulePath = value("SOFTHSM2_MODULE");
    utilPath = value("SOFTHSM2_UTIL");
  }
  if (!modulePath || !utilPath)
    throw new Error("hack/softhsm2/ensure.sh did not name SoftHSM2's module and util");
  binaries = { modulePath, utilPath };
  return binaries;
}

let tokenDirectory: string | undefined;

/** The process's SoftHSM folder (config and tokens), made and put in SOFTHSM2_CONF on first use. */
function softHsmHome(): string {
  if (tokenDirectory) return tokenDirectory;
  const home = mkdtempSync(path.join(tmpdir(), "csr-signer-softhsm-"));
  mkdirSync(path.join(home, "tokens"));
  const config = path.join(home, "softhsm2.conf");
  writeFileSync(
    config,
    `directories.tokendir = ${path.join(home, "tokens")}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  process.env.SOFTHSM2_CONF = config;
  // Removing the folder at exit is best effort: a leftover temp folder harms nothing.
  process.on("exit", () => rmSync(home, { recursive: true, force: true }));
  tokenDirectory = home;
  return home;
}

export interface SoftHsmToken {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly userPin: string;
  readonly soPin: string;
  /** SOFTHSM2_CONF of this process's tokens. */
  readonly configPath: string;
  /** Deletes the token and everything in it (an HSM partition gone, a smart card pulled). */
  remove(): void;
  /** Makes the token again, empty, with the same label and PINs (after remove(), or in place). */
  initialize(): void;
  /** Changes the user PIN to `newPin` (the old one stops working). */
  changeUserPin(newPin: string): void;
  /** Runs softhsm2-util with this token's module and config. */
  util(args: string[]): string;
}

/** A new, empty SoftHSM token with a unique label and random PINs. */
export function createSoftHsmToken(labelPrefix = "csr-signer-test"): SoftHsmToken {
  const { modulePath, utilPath } = softHsmBinaries();
  const home = softHsmHome();
  const tokenLabel = `${labelPrefix}-${randomBytes(4).toString("hex")}`.slice(0, 32);
  let userPin = randomBytes(6).toString("hex");
  const soPin = randomBytes(6).toString("hex");
  const util = (args: string[]): string =>
    execFileSync(utilPath, ["--module", modulePath, ...args], {
      encoding: "utf8",
      env: { ...process.env, SOFTHSM2_CONF: path.join(home, "softhsm2.conf") },
      stdio: ["ignore", "pipe", "pipe"],
    });
  const token: SoftHsmToken = {
    modulePath,
    tokenLabel,
    get userPin() {
      return userPin;
    },
    soPin,
    configPath: path.join(home, "softhsm2.conf"),
    remove: () => void util(["--delete-token", "--token", tokenLabel]),
    initialize: () => {
      try {
        util(["--delete-token", "--token", tokenLabel]);
      } catch {
        // Not there (removed before): initialise a free slot below.
      }
      util(["--init-token", "--free", "--label", tokenLabel, "--so-pin", soPin, "--pin", userPin]);
    },
    changeUserPin: (newPin: string) => {
      pkcs11ToolSetPin(modulePath, tokenLabel, userPin, newPin);
      userPin = newPin;
    },
    util,
  };
  util(["--init-token", "--free", "--label", tokenLabel, "--so-pin", soPin, "--pin", userPin]);
  return token;
}

/**
 * softhsm2-util cannot change a user PIN: C_SetPIN through pkcs11js, in this process (SoftHSM
 * caches a token's PINs per process, so a change made by another process is not seen here; an HSM
 * would see it at once).
 */
function pkcs11ToolSetPin(modulePath: string, tokenLabel: string, oldPin: string, newPin: string): void {
  const library = new pkcs11js.PKCS11();
  library.load(modulePath);
  try {
    library.C_Initialize();
  } catch (error) {
    // csr-signer initialised the library in this process already: the calls below share that state.
    if (!String(error).includes("CKR_CRYPTOKI_ALREADY_INITIALIZED")) throw error;
  }
  const slot = library
    .C_GetSlotList(true)
    .find((candidate) => library.C_GetTokenInfo(candidate).label.trim() === tokenLabel);
  if (slot === undefined) throw new Error(`no SoftHSM token ${tokenLabel}`);
  const session = library.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    try {
      library.C_Login(session, pkcs11js.CKU_USER, oldPin);
    } catch (error) {
      // Logged in by a key of this process: C_SetPIN below still checks the old PIN.
      if (!String(error).includes("CKR_USER_ALREADY_LOGGED_IN")) throw error;
    }
    library.C_SetPIN(session, oldPin, newPin);
  } finally {
    library.C_CloseSession(session);
  }
}

/** The folder SoftHSM keeps `token` in (tokens/<uuid>/, its label in token.object): copy it to restore a removed token. */
export function softHsmTokenFolder(token: SoftHsmToken): string {
  const tokens = path.join(path.dirname(token.configPath), "tokens");
  const folder = readdirSync(tokens).find((name) =>
    readFileSync(path.join(tokens, name, "token.object")).includes(Buffer.from(token.tokenLabel)),
  );
  if (!folder) throw new Error(`no SoftHSM folder for ${token.tokenLabel}`);
  return path.join(tokens, folder);
}
