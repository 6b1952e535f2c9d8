// Test data: Unicode text that tokenizers must round-trip (scripts, combining marks, emoji
// sequences, unusual white space, the empty string).
export const UNICODE_SAMPLES: readonly string[] = [
  'Hello, world! It\'s 2024; we\'ll see. \t\tTabs\nand\r\nnewlines\n\n\n   trailing   ',
  'naïve café — e\u0301 (combining acute), A\u030a\u0323, Zalgo: Z\u0351\u034b\u0305a\u035b',
  '日本語のテキストと中文文本，한국어 텍스트。',
  'emoji 👍🏽 family 👨‍👩‍👧‍👦 flags 🇫🇷🇯🇵 keycap 1️⃣ text',
  '\u00a0nbsp \u2028ls \u3000ideographic space \u0085nel \ufeffbom 𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  '',
  ' ',
];
