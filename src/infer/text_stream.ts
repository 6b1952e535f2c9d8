// Incremental detokenization for streaming: the text each new token adds, printed only once it
// is complete. A token may end inside a multi-byte UTF-8 character (byte-level BPE splits them),
// which the tokenizer decodes to U+FFFD until the following tokens complete it; and SentencePiece
// decoders treat the first token of a sequence differently (the leading space), so a token's text
// depends on what precedes it.
//
// The method of Hugging Face's DecodeStream: decode a short window ending at the new token and
// the same window without it; the difference is the new text, held back while it ends in U+FFFD.
//   prefix .. read   tokens already printed (the context of the next decode)
//   read .. end      tokens not printed yet
import type { Tokenizer } from '../data/tokenizer.js';

/** Context tokens of the prompt decoded with the first new token (enough for any leading space). */
const PROMPT_CONTEXT = 8;

export class TextStream {
  private readonly ids: number[] = [];
  private prefix = 0;
  private read = 0;

  /** `context`: the prompt's ids, so the first token's text is decoded as it continues them. */
  constructor(private readonly tokenizer: Pick<Tokenizer, 'decode'>, context: ArrayLike<number> = []) {
    const n = Math.min(context.length, PROMPT_CONTEXT);
    for (let i = context.length - n; i < context.length; i++) this.ids.push(context[i]!);
    this.read = this.ids.length;
  }

  /** Adds a token; returns the text it completes ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const before = this.tokenizer.decode(this.ids.slice(this.prefix, this.read));
    const now = this.tokenizer.decode(this.ids.slice(this.prefix));
    if (now.length <= before.length || now.endsWith('\uFFFD')) return '';
    this.prefix = this.read;
    this.read = this.ids.length;
    // keep the window short: drop what no later decode needs
    if (this.prefix > 0) {
      this.ids.splice(0, this.prefix);
      this.read -= this.prefix;
      this.prefix = 0;
    }
    return now.slice(before.length);
  }

  /** The text of tokens still held back (an incomplete character at the end: U+FFFD). */
  flush(): string {
    if (this.read === this.ids.length) return '';
    const before = this.tokenizer.decode(this.ids.slice(this.prefix, this.read));
    const now = this.tokenizer.decode(this.ids.slice(this.prefix));
    this.prefix = this.read;
    this.read = this.ids.length;
    return now.slice(before.length);
  }
}
