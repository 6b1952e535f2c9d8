// Added tokens in a text, found the way the Hugging Face library's AddedVocabulary finds them:
// leftmost first, then longest (its Aho-Corasick LeftmostLongest); a special token is skipped
// unless allowed (the library's encode_special_tokens); `single_word` only between non-word
// characters (Unicode \w, as its regex crate has it); `lstrip` / `rstrip` take the
// whitespace before / after into the token.

export interface AddedInfo {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
  singleWord: boolean;
  normalized: boolean;
}

const WHITE = /\p{White_Space}/u;
const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;

/** Finds added tokens in a text the way the library's AddedVocabulary does. */
export class AddedMatcher {
  readonly hasNonSpecial: boolean;
  private readonly re: RegExp;
  private readonly byPattern = new Map<string, AddedInfo>();

  constructor(tokens: AddedInfo[], patternOf: (a: AddedInfo) => string) {
    for (const t of tokens) {
      const p = patternOf(t);
      if (p.length > 0 && !this.byPattern.has(p)) this.byPattern.set(p, t);
    }
    this.hasNonSpecial = tokens.some((t) => !t.special);
    // Longest first: at the leftmost position, the first alternative that matches is the longest.
    const alts = [...this.byPattern.keys()]
      .sort((a, b) => b.length - a.length)
      .map((p) => p.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'));
    this.re = new RegExp(alts.length > 0 ? alts.join('|') : '(?!)', 'g');
  }

  /** [start, end, id] covering `text`; id -1 for the text between tokens. */
  split(text: string, allowSpecial: boolean): Array<[number, number, number]> {
    const out: Array<[number, number, number]> = [];
    let done = 0;
    const re = this.re;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      const tok = this.byPattern.get(m[0])!;
      let start = m.index;
      let stop = start + m[0].length;
      if (tok.special && !allowSpecial) continue;
      if (tok.singleWord) {
        const before = start > 0 ? lastChar(text, start) : '';
        const after = stop < text.length ? String.fromCodePoint(text.codePointAt(stop)!) : '';
        if ((before && WORD_CHAR.test(before)) || (after && WORD_CHAR.test(after))) continue;
      }
      if (tok.lstrip) {
        let s = start;
        while (s > 0 && WHITE.test(lastChar(text, s))) s -= lastChar(text, s).length;
        start = Math.max(s, done);
      }
      if (tok.rstrip) {
        while (stop < text.length) {
          const c = String.fromCodePoint(text.codePointAt(stop)!);
          if (!WHITE.test(c)) break;
          stop += c.length;
        }
      }
      start = Math.max(start, done);
      if (done < start) out.push([done, start, -1]);
      out.push([start, stop, tok.id]);
      done = stop;
    }
    if (done < text.length) out.push([done, text.length, -1]);
    return out;
  }
}

/** The code point that ends just before index i. */
export function lastChar(s: string, i: number): string {
  const c = s.charCodeAt(i - 1);
  if (c >= 0xdc00 && c <= 0xdfff && i >= 2) {
    const h = s.charCodeAt(i - 2);
    if (h >= 0xd800 && h <= 0xdbff) return s.slice(i - 2, i);
  }
  return s[i - 1];
}
