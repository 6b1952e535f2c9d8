// The default corpus embedded in the project: as inputs of `litespark prepare` (how training
// reads it), and in memory for tests and tools.
//
// The embedded corpus is the TypeScript compiler's bundled declaration files
// (`typescript/lib/lib*.d.ts`, about 3 MB of English doc comments and code; typescript is a
// runtime dependency), read at run time in sorted file-name order. It changes only when the
// typescript version does; `hash` tells.
//
// A corpus is a list of documents (one per file) joined by DOC_SEPARATOR into `text`;
// `documents` gives where each lies in `text`, so a tokenizer can put an end-of-text token
// between documents instead of the separator.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { DataError } from './errors.js';
import type { InputFile } from './inputs.js';

export const DOC_SEPARATOR = '\n\n';

export interface CorpusDocument {
  /** File name, relative to the corpus root. */
  name: string;
  /** UTF-16 offsets into `Corpus.text`, end exclusive, separator not included. */
  start: number;
  end: number;
}

export interface Corpus {
  name: string;
  description: string;
  text: string;
  /** UTF-8 length of `text`. */
  bytes: number;
  files: number;
  /** sha256 (hex) of the UTF-8 of `text`. */
  hash: string;
  documents: CorpusDocument[];
}

export interface CorpusOptions {
  /**
   * Keep at most this many UTF-8 bytes of text (separators included): whole files while they
   * fit, then the start of the next file cut at a character boundary. Default: everything.
   */
  maxBytes?: number;
}

/** The embedded corpus' files: typescript/lib/lib*.d.ts in code-unit order of their names. */
function embeddedFiles(): { version: string; files: Array<{ name: string; path: string }> } {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('typescript/package.json');
  const version = (JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string }).version;
  const libDir = join(dirname(pkgPath), 'lib');
  const names = readdirSync(libDir)
    .filter((f) => f.startsWith('lib') && f.endsWith('.d.ts'))
    .sort(byCodeUnits);
  if (names.length === 0) throw new DataError(`embedded corpus: no lib*.d.ts files in ${libDir}`);
  return { version, files: names.map((n) => ({ name: n, path: join(libDir, n) })) };
}

/**
 * The embedded corpus as inputs of `litespark prepare`: each file one text document. This is
 * how training reads it (source.ts).
 */
export function embeddedInputs(): { version: string; description: string; files: InputFile[] } {
  const { version, files } = embeddedFiles();
  const inputs = files.map((f) => ({ path: f.path, format: 'text' as const, compression: 'none' as const, bytes: statSync(f.path).size }));
  const bytes = inputs.reduce((s, f) => s + f.bytes, 0);
  return {
    version,
    files: inputs,
    description: `TypeScript ${version} standard library declarations (typescript/lib/lib*.d.ts), ${files.length} files, ${bytes} bytes`,
  };
}

/** The default corpus in memory (for tests and tools): typescript/lib/lib*.d.ts. */
export function embeddedCorpus(opts: CorpusOptions = {}): Corpus {
  const { version, files } = embeddedFiles();
  const corpus = build(files, opts, 'embedded');
  corpus.description =
    `TypeScript ${version} standard library declarations (typescript/lib/lib*.d.ts), ` +
    `${corpus.files} files, ${corpus.bytes} bytes`;
  return corpus;
}

function build(files: Array<{ name: string; path: string }>, opts: CorpusOptions, name: string): Corpus {
  const maxBytes = opts.maxBytes ?? Infinity;
  if (!(maxBytes > 0)) throw new RangeError(`maxBytes must be positive, got ${opts.maxBytes}`);
  const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const parts: string[] = [];
  const documents: CorpusDocument[] = [];
  let bytes = 0;
  let chars = 0;
  for (const f of files) {
    const sepBytes = parts.length > 0 ? DOC_SEPARATOR.length : 0;
    const room = maxBytes - bytes - sepBytes;
    if (room <= 0) break;
    let buf: Buffer = readFileSync(f.path);
    if (buf.length === 0) continue;
    if (buf.length > room) {
      let cut = Math.floor(room);
      while (cut > 0 && (buf[cut] & 0xc0) === 0x80) cut--; // not inside a UTF-8 character
      if (cut === 0) break;
      buf = buf.subarray(0, cut);
    }
    let text: string;
    try {
      text = fatal.decode(buf);
    } catch {
      throw new DataError(`corpus file ${f.path}: not UTF-8 text`);
    }
    if (sepBytes > 0) {
      parts.push(DOC_SEPARATOR);
      chars += DOC_SEPARATOR.length;
    }
    parts.push(text);
    documents.push({ name: f.name, start: chars, end: chars + text.length });
    chars += text.length;
    bytes += sepBytes + buf.length;
  }
  if (documents.length === 0) {
    const all = files.every((f) => statSync(f.path).size === 0);
    throw new DataError(
      `corpus ${name}: ${all ? 'no text (all files are empty)' : `maxBytes ${maxBytes} keeps no text`}`,
    );
  }
  const text = parts.join('');
  return {
    name,
    description: '',
    text,
    bytes,
    files: documents.length,
    hash: createHash('sha256').update(text).digest('hex'),
    documents,
  };
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
