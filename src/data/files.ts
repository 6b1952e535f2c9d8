// Durable file replacement for the data directory: a reader sees the old file or the new one,
// never half of one, and a crash after the call returns cannot lose the new one.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';

/** Writes `data` to a new file at `path` and fsyncs it (for files inside a directory that is renamed into place as a whole). */
export function writeDurable(path: string, data: Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path` via a temporary file in the same directory, fsync and rename. */
export function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}-${threadId}`;
  try {
    writeDurable(tmp, typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDirectory(dirname(path));
}

/** Makes a rename in `dir` durable (best effort where directories cannot be opened). */
export function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // some filesystems refuse fsync on a directory; the rename itself is still atomic
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
