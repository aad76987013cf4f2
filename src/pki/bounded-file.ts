/**
 * Reading a small mounted file (CA material, a PIN, a passphrase) without trusting what the path
 * is: opened non-blocking (a FIFO must not freeze the event loop), checked on the open descriptor
 * (no swap between a stat and the read), refused unless it is a regular file (/dev/zero would be
 * read until memory runs out), and read to at most the cap + 1 bytes whatever its size claims.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

export type BoundedFileRead =
  { kind: "ok"; bytes: Buffer } | { kind: "notRegularFile" } | { kind: "tooLarge"; bytes: number };

/** Throws the system error (ENOENT, EACCES) when the path cannot be opened. Follows symlinks. */
export function readBoundedFile(path: string, maximumBytes: number): BoundedFileRead {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { kind: "notRegularFile" };
    if (stat.size > maximumBytes) return { kind: "tooLarge", bytes: stat.size };
    const buffer = Buffer.alloc(maximumBytes + 1);
    let length = 0;
    for (;;) {
      const read = readSync(fd, buffer, length, buffer.length - length, null);
      if (read === 0) break;
      length += read;
      if (length === buffer.length) return { kind: "tooLarge", bytes: length }; // grew since the fstat
    }
    return { kind: "ok", bytes: buffer.subarray(0, length) };
  } finally {
    closeSync(fd);
  }
}
