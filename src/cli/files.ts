import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * Writes a set of files into `dir`: each goes to a temporary name first and the renames happen only
 * when every write succeeded, so a failed write (disk full, permissions) changes nothing. Each rename
 * is atomic, the set is not: a rename failing midway (the target turned into a folder) leaves the
 * files renamed so far, and the error names the one that failed. Refuses to overwrite unless
 * `overwrite`. Key files get mode 0600.
 */
export function writeFilesAtomically(
  dir: string,
  files: Record<string, string>,
  options: { overwrite: boolean; privateFiles: readonly string[] },
): void {
  mkdirSync(dir, { recursive: true });
  if (!options.overwrite) {
    const existing = Object.keys(files).filter((name) => existsSync(join(dir, name)));
    if (existing.length > 0)
      throw new Error(
        `${existing.map((n) => join(dir, n)).join(", ")} already exist (use --force to replace)`,
      );
  }
  const staged: string[] = [];
  try {
    for (const [name, content] of Object.entries(files)) {
      const temporary = join(dir, `.${name}.${process.pid}.tmp`);
      writeFileSync(temporary, content, { mode: options.privateFiles.includes(name) ? 0o600 : 0o644 });
      staged.push(temporary);
    }
  } catch (error) {
    for (const temporary of staged) rmSync(temporary, { force: true });
    throw error;
  }
  const names = Object.keys(files);
  for (const [index, name] of names.entries()) {
    try {
      renameSync(join(dir, `.${name}.${process.pid}.tmp`), join(dir, name));
    } catch (error) {
      for (const rest of names.slice(index))
        rmSync(join(dir, `.${rest}.${process.pid}.tmp`), { force: true });
      throw new Error(`could not put ${join(dir, name)} in place: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}
