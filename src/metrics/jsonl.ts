// metrics.jsonl: one JSON object per line, appended as it happens, so a crashed or still
// running training leaves a readable log (tail -f works, no buffering in JS).
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export class MetricsLog {
  readonly path: string;
  private fd: number | null;

  /** Opens `path` for appending (creating it and its directory if needed). */
  constructor(path: string) {
    this.path = path;
    mkdirSync(dirname(path), { recursive: true });
    this.fd = openSync(path, 'a');
  }

  /** Appends `record` as one line. Non-finite numbers become null (JSON has no NaN). */
  write(record: object): void {
    if (this.fd === null) throw new Error(`metrics log ${this.path} is closed`);
    writeSync(this.fd, JSON.stringify(record) + '\n');
  }

  close(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }
}

/** Peak resident set size of this process so far, in bytes. */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
}
