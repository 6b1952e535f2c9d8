// Tokenizer encode speed, MB/s of UTF-8 input on one core, on the embedded corpus (the
// TypeScript lib*.d.ts files: ~3.1 MB of English doc comments and declarations).
//
//   npx tsc -p . && node dist/bench/tokenizer.js [--vocab 8192] [--mb 3.2] [--dump DIR]
//
// --dump DIR writes each row's tokenizer.json into DIR (to compare with another tokenizer).
//
// Rows (each a fresh tokenizer, so the first pass starts with an empty word cache):
//   trained        BpeTokenizer.train on the corpus, encode
//   gpt2-style     its tokenizer.json with GPT-2's pre-tokenizer (ByteLevel use_regex), loaded
//   llama3-style   the same vocab with Llama 3's Split regex and ignore_merges, loaded
//   llama2-style   a SentencePiece-style tokenizer.json derived from the same merges (tokens
//                  that are whole characters, " " as "▁", <0xNN> byte fallback; normalizer
//                  Prepend + Replace, no pre-tokenizer), loaded: cuts before each "▁"
//   llama2-joined  the same plus, last in rank, a merge of every character token with "▁"
//                  (cutting before "▁" is no longer exact): cuts between unjoined characters
//   llama2-whole   llama2-style with ignore_merges (no cut is provably exact then; the ids
//                  are the same unless a whole document is one token): one heap merge per
//                  document
// Columns: first pass (cold cache) and second pass (warm) in MB/s, and tokens.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { embeddedCorpus } from '../src/data/corpus.js';
import { BpeTokenizer, HfTokenizer, type Tokenizer } from '../src/data/tokenizer.js';

const LLAMA3_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function timeEncode(tok: Tokenizer, docs: string[], bytes: number): { mbs: number; tokens: number } {
  const t0 = performance.now();
  let tokens = 0;
  for (const d of docs) tokens += tok.encode(d).length;
  const s = (performance.now() - t0) / 1000;
  return { mbs: bytes / 1e6 / s, tokens };
}

/** A Llama-2-style tokenizer.json from a byte-level one's merges (see the header). */
function sentencePieceStyle(bpe: BpeTokenizer, variant: 'cut' | 'joined' | 'whole'): Record<string, unknown> {
  const strict = new TextDecoder('utf-8', { fatal: true });
  const text = (id: number): string | undefined => {
    try {
      return strict.decode(bpe.tokenBytes(id)).replaceAll(' ', '\u2581');
    } catch {
      return undefined; // not whole characters
    }
  };
  const vocab = new Map<string, number>([
    ['<unk>', 0],
    ['<s>', 1],
    ['</s>', 2],
  ]);
  const add = (t: string): void => {
    if (!vocab.has(t)) vocab.set(t, vocab.size);
  };
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  const merges: Array<[string, string]> = [];
  // Characters first (any single-character token), then merges whose parts are both tokens.
  for (let id = 0; id < bpe.vocabSize; id++) {
    const t = text(id);
    if (t !== undefined && [...t].length === 1) add(t);
  }
  bpe.merges().forEach(([l, r], rank) => {
    const a = text(l);
    const b = text(r);
    const m = text(bpe.mergedId(rank));
    if (a === undefined || b === undefined || m === undefined || !vocab.has(a) || !vocab.has(b)) return;
    if (b.startsWith('\u2581') && !a.endsWith('\u2581')) return; // keeps ▁-cuts exact
    add(m);
    merges.push([a, b]);
  });
  if (variant === 'joined') {
    for (const c of [...vocab.keys()]) {
      if ([...c].length === 1 && c !== '\u2581') {
        add(c + '\u2581');
        merges.push([c, '\u2581']);
      }
    }
  }
  const added = ['<unk>', '<s>', '</s>'].map((content, id) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '\u2581' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: variant === 'whole',
      vocab: Object.fromEntries(vocab),
      merges,
    },
  };
}

function main(): void {
  const vocabSize = Number(arg('vocab') ?? 8192);
  const maxBytes = Math.round(Number(arg('mb') ?? 3.2) * 1e6);
  const corpus = embeddedCorpus({ maxBytes });
  const docs = corpus.documents.map((d) => corpus.text.slice(d.start, d.end));
  const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0);
  const t0 = performance.now();
  const trained = BpeTokenizer.train(docs, vocabSize);
  console.log(
    `embedded corpus: ${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB; vocab ${vocabSize} trained in ${((performance.now() - t0) / 1000).toFixed(1)} s; node ${process.version}`,
  );

  const json = trained.toJSON();
  const gpt2 = {
    ...json,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
  };
  const llama3 = {
    ...json,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    model: { ...json.model, ignore_merges: true },
  };
  const rows: Array<[string, () => Tokenizer]> = [
    ['trained', () => BpeTokenizer.fromJSON(JSON.parse(JSON.stringify(json)))],
    ['gpt2-style', () => HfTokenizer.fromJSON(gpt2)],
    ['llama3-style', () => HfTokenizer.fromJSON(llama3)],
    ['llama2-style', () => HfTokenizer.fromJSON(sentencePieceStyle(trained, 'cut'))],
    ['llama2-joined', () => HfTokenizer.fromJSON(sentencePieceStyle(trained, 'joined'))],
    ['llama2-whole', () => HfTokenizer.fromJSON(sentencePieceStyle(trained, 'whole'))],
  ];
  console.log('row            cold MB/s  warm MB/s     tokens  kind');
  const dump = arg('dump');
  for (const [name, make] of rows) {
    const tok = make();
    if (dump) writeFileSync(join(dump, `${name}.json`), JSON.stringify(tok.toJSON()));
    const cold = timeEncode(tok, docs, bytes);
    const warm = timeEncode(tok, docs, bytes);
    console.log(
      `${name.padEnd(14)} ${cold.mbs.toFixed(1).padStart(9)}  ${warm.mbs.toFixed(1).padStart(9)}  ${String(cold.tokens).padStart(9)}  ${tok.kind}`,
    );
  }
}

main();
