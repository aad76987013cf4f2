/**
 * The messages between the main thread and a PKCS#11 module's worker (module-worker.ts and
 * worker-entry.ts). Every request gets exactly one reply with its id; errors travel as a reason
 * and a message (Pkcs11Error's fields), never as the binding's objects.
 */
import type { CertificateAuthorityKeyType } from "../offline-ca.js";
import type { Pkcs11FailureReason } from "./errors.js";
import type { Pkcs11KeyLocation } from "./key-location.js";

/** What the worker is started with (workerData). */
export interface WorkerStart {
  /** Marks the worker, so the bundle's worker entry knows it runs as one. */
  readonly csrSignerPkcs11Worker: true;
  readonly modulePath: string;
}

export interface WorkerSettings {
  /** Minimum time between two C_Finalize + C_Initialize for missing tokens (generation is exempt). */
  readonly reinitializeIntervalMs: number;
}

export type WorkerRequest =
  | {
      op: "open";
      location: Pkcs11KeyLocation;
      pin: string;
      settings: WorkerSettings;
    }
  | {
      op: "generate";
      location: Pkcs11KeyLocation;
      pin: string;
      keyType: CertificateAuthorityKeyType;
      settings: WorkerSettings;
    }
  | { op: "sign"; key: number; data: Uint8Array }
  | { op: "close"; key: number };

export type WorkerCall = WorkerRequest & { id: number };

export interface OpenedKey {
  /** The worker's name for the open key, for sign and close. */
  key: number;
  /** The public key, SubjectPublicKeyInfo DER. */
  publicKeyDer: Uint8Array;
  protection: KeyProtection;
}

/** How the token guards the private key (CKA_SENSITIVE, CKA_EXTRACTABLE). */
export interface KeyProtection {
  /** The token never reveals the key's value. */
  readonly sensitive: boolean;
  /** The key may leave the token wrapped by another key. */
  readonly extractable: boolean;
}

/** The worker's first message, once its module is loaded and initialised (or failed to be). */
export interface WorkerReady {
  ready: true;
}

/** Every reply carries the module's re-initialisations so far in this worker. */
export type WorkerReply = { id: number; generation: number } & (
  | { ok: true; value: OpenedKey | Uint8Array | undefined }
  | { ok: false; reason: Pkcs11FailureReason; message: string }
);
