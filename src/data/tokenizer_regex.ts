// Oniguruma patterns (Ruby syntax, as the Hugging Face tokenizers library compiles a `Split`
// or `Replace` regex) translated to JavaScript RegExp source for the 'u' flag, so that the
// translated pattern matches exactly what the original matches. What differs and how:
//
//   \s \S        Oniguruma: Unicode White_Space. JS \s adds U+FEFF and lacks U+0085, so
//                \p{White_Space} / \P{White_Space}.
//   \d \D \w \W  Unicode in Oniguruma (\d = Nd, \w = L|M|N|Pc), ASCII in JS: spelled as
//                properties. \h = hex digit.
//   . ^ $        Ruby: `.` is anything but \n; `^`/`$` are line anchors at \n only (JS's m flag
//                would also take \r, U+2028, U+2029): lookarounds on \n.
//   \A \z \Z \b  start, end, end before a final \n, Unicode word boundary.
//   (?i:...)     JS in Node 20 has no inline flags: each literal in the group becomes a class
//                of its simple case-fold variants ('s' -> [sSſ], 'k' -> [kKK]), which is what
//                Oniguruma matches for one-to-one folds. Multi-character folds (ß ~ ss) are
//                not reproduced. (?i) to the end of the group, (?-i:...) and (?-i) also work.
//   x{m,n}       Kept; `{,n}` becomes `{0,n}`; a brace that is not a quantifier is a literal.
//   \p{Han}      Script names become \p{Script=Han}; \p{^L} becomes \P{L}.
// Not supported (an Error names the construct): possessive quantifiers (`*+`, `++`, `?+`),
// atomic groups `(?>...)`, other inline options, nested classes and `&&` in classes, POSIX
// brackets, `\G`, `\K`, `\R`, `\X`, `\W` inside a class, ranges inside (?i:...) classes.

const WORD = '\\p{L}\\p{M}\\p{N}\\p{Pc}';
const SYNTAX = new Set('^$\\.*+?()[]{}|/');

/** The JS source (for the 'u' flag) of an Oniguruma pattern; throws Error naming what it cannot take. */
export function onigToJs(pattern: string): string {
  return new Translator(pattern).run();
}

class Translator {
  private i = 0;
  private out = '';
  /** One entry per open group: was (?i) in force when it opened. */
  private readonly groups: boolean[] = [];
  private ci = false;

  constructor(private readonly src: string) {}

  run(): string {
    const s = this.src;
    while (this.i < s.length) {
      const c = s[this.i];
      if (c === '\\') this.escape(false);
      else if (c === '[') this.charClass();
      else if (c === '(') this.openGroup();
      else if (c === ')') {
        if (this.groups.length === 0) this.fail('unbalanced )');
        this.ci = this.groups.pop()!;
        this.out += ')';
        this.i++;
      } else if (c === '|') this.emit('|', 1);
      else if (c === '.') this.emit('[^\\n]', 1);
      else if (c === '^') this.emit('(?<![^\\n])', 1);
      else if (c === '$') this.emit('(?![^\\n])', 1);
      else if (c === '*' || c === '+' || c === '?') this.quantifier(c, 1);
      else if (c === '{') this.brace();
      else if (c === '}' || c === ']') this.emit('\\' + c, 1);
      else this.literal(this.codePointAt(this.i));
    }
    if (this.groups.length > 0) this.fail('unbalanced (');
    return this.out;
  }

  private fail(why: string): never {
    throw new Error(`cannot translate regex ${JSON.stringify(this.src)} at offset ${this.i}: ${why}`);
  }

  private emit(text: string, advance: number): void {
    this.out += text;
    this.i += advance;
  }

  private codePointAt(i: number): string {
    return String.fromCodePoint(this.src.codePointAt(i)!);
  }

  private literal(ch: string): void {
    this.i += ch.length;
    if (this.ci) {
      const v = caseVariants(ch);
      this.out += v.length === 1 ? escapeLiteral(ch) : `[${v.map(escapeInClass).join('')}]`;
    } else this.out += escapeLiteral(ch);
  }

  /** After *, +, ?: a lazy `?` passes, a possessive `+` is refused. */
  private quantifier(q: string, len: number): void {
    this.emit(q, len);
    const next = this.src[this.i];
    if (next === '?') this.emit('?', 1);
    else if (next === '+' && q.length === 1) this.fail('possessive quantifiers are not supported');
  }

  private brace(): void {
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.src.slice(this.i));
    if (!m || (m[1] === '' && m[3] === '') || (m[1] === '' && m[2] === '')) {
      this.emit('\\{', 1); // not a quantifier: a literal brace, as Oniguruma reads it
      return;
    }
    const q = `{${m[1] === '' ? '0' : m[1]}${m[2]}${m[3]}}`;
    this.out += q;
    this.i += m[0].length;
    if (this.src[this.i] === '?') this.emit('?', 1);
  }

  private openGroup(): void {
    const rest = this.src.slice(this.i);
    const flags = /^\(\?(-?)([a-zA-Z]+)(:|\))/.exec(rest);
    if (flags) {
      if (flags[2] !== 'i') this.fail(`inline option (?${flags[1]}${flags[2]}) is not supported`);
      const on = flags[1] === '';
      this.i += flags[0].length;
      if (flags[3] === ')') {
        this.ci = on; // to the end of the enclosing group
        return;
      }
      this.groups.push(this.ci);
      this.ci = on;
      this.out += '(?:';
      return;
    }
    if (rest.startsWith('(?#')) {
      const end = rest.indexOf(')');
      if (end < 0) this.fail('unterminated comment');
      this.i += end + 1;
      return;
    }
    if (rest.startsWith('(?>')) this.fail('atomic groups are not supported');
    const opener = /^\((\?(:|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>))?/.exec(rest)![0];
    if (rest.startsWith('(?') && opener === '(') this.fail(`group syntax ${rest.slice(0, 4)} is not supported`);
    this.groups.push(this.ci);
    this.emit(opener, opener.length);
  }

  /** An escape at this.i (the backslash); `inClass` selects the class spelling. */
  private escape(inClass: boolean): void {
    const s = this.src;
    const c = s[this.i + 1];
    if (c === undefined) this.fail('trailing backslash');
    const two = (text: string): void => this.emit(text, 2);
    switch (c) {
      case 's': return two('\\p{White_Space}');
      case 'S': return two('\\P{White_Space}');
      case 'd': return two('\\p{Nd}');
      case 'D': return two('\\P{Nd}');
      case 'w': return two(inClass ? WORD : `[${WORD}]`);
      case 'W':
        if (inClass) this.fail('\\W inside a character class is not supported');
        return two(`[^${WORD}]`);
      case 'h': return two(inClass ? '0-9a-fA-F' : '[0-9a-fA-F]');
      case 'H':
        if (inClass) this.fail('\\H inside a character class is not supported');
        return two('[^0-9a-fA-F]');
      case 'p':
      case 'P': return this.property(c === 'P');
      case 'x': {
        const braced = /^\\x\{([0-9a-fA-F]+)\}/.exec(s.slice(this.i));
        if (braced) return this.emit(`\\u{${braced[1]}}`, braced[0].length);
        const hex = /^\\x([0-9a-fA-F]{1,2})/.exec(s.slice(this.i));
        if (!hex) this.fail('bad \\x escape');
        return this.emit(`\\x${hex[1].padStart(2, '0')}`, hex[0].length);
      }
      case 'u': {
        const hex = /^\\u[0-9a-fA-F]{4}/.exec(s.slice(this.i));
        if (!hex) this.fail('bad \\u escape');
        return this.emit(hex[0], 6);
      }
      case 't': case 'n': case 'r': case 'f': case 'v': return two('\\' + c);
      case 'a': return two('\\x07');
      case 'e': return two('\\x1b');
      case '0':
        if (/[0-7]/.test(s[this.i + 2] ?? '')) this.fail('octal escapes are not supported');
        return two('\\0');
    }
    if (!inClass) {
      switch (c) {
        case 'A': return two('(?<![^])'); // start of input
        case 'z': return two('(?![^])');
        case 'Z': return two('(?=\\n?(?![^]))');
        case 'b': return two(`(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`);
        case 'B': return two(`(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`);
        case 'k': {
          const name = /^\\k<([A-Za-z_][A-Za-z0-9_]*)>/.exec(s.slice(this.i));
          if (!name) this.fail('bad \\k escape');
          return this.emit(name[0], name[0].length);
        }
      }
      if (c >= '1' && c <= '9') {
        const num = /^\\[1-9][0-9]*/.exec(s.slice(this.i))![0];
        return this.emit(num, num.length);
      }
    }
    if (/[A-Za-z0-9]/.test(c)) this.fail(`escape \\${c} is not supported`);
    // An escaped symbol is that symbol; JS 'u' allows escaping only syntax characters.
    const ch = this.codePointAt(this.i + 1);
    this.i += 1;
    if (inClass) this.emit(escapeInClass(ch), ch.length);
    else this.literal(ch);
  }

  private property(negated: boolean): void {
    const m = /^\\[pP]\{(\^?)([^}]*)\}/.exec(this.src.slice(this.i));
    if (!m) this.fail('bad \\p escape');
    const neg = negated !== (m[1] === '^');
    const spelled = propertyName(m[2].trim()) ?? this.fail(`unknown property \\p{${m[2]}}`);
    this.emit(`\\${neg ? 'P' : 'p'}{${spelled}}`, m[0].length);
  }

  private charClass(): void {
    const s = this.src;
    this.out += '[';
    this.i++;
    if (s[this.i] === '^') this.emit('^', 1);
    if (s[this.i] === ']') this.emit('\\]', 1); // a leading ] is a literal
    for (;;) {
      const c = s[this.i];
      if (c === undefined) this.fail('unterminated character class');
      if (c === ']') {
        this.emit(']', 1);
        return;
      }
      if (c === '[') this.fail(s.startsWith('[:', this.i) ? 'POSIX brackets are not supported' : 'nested character classes are not supported');
      if (c === '&' && s[this.i + 1] === '&') this.fail('class intersection (&&) is not supported');
      if (c === '\\') {
        this.escape(true);
        continue;
      }
      const ch = this.codePointAt(this.i);
      const isRange = s[this.i + ch.length] === '-' && s[this.i + ch.length + 1] !== ']' && s[this.i + ch.length + 1] !== undefined;
      if (this.ci && isRange) this.fail('ranges inside a case-insensitive class are not supported');
      this.i += ch.length;
      if (c === '-') this.out += '\\-';
      else if (this.ci) this.out += caseVariants(ch).map(escapeInClass).join('');
      else this.out += escapeInClass(ch);
      if (isRange) this.emit('-', 1);
    }
  }
}

function escapeLiteral(ch: string): string {
  return SYNTAX.has(ch) ? '\\' + ch : ch;
}

function escapeInClass(ch: string): string {
  return ch === '\\' || ch === ']' || ch === '[' || ch === '-' || ch === '^' ? '\\' + ch : ch;
}

const GENERAL_CATEGORIES = new Set(
  'L LC Lu Ll Lt Lm Lo M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Cs Co Cn'.split(' '),
);

/** The JS spelling of an Oniguruma property name, or undefined if JS knows no such property. */
function propertyName(name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const gc of GENERAL_CATEGORIES) if (gc.toLowerCase() === lower) return gc;
  // Other capitalizations (letter, white_space, latin): also try title case per word.
  const title = name.replace(/(^|[^A-Za-z])([a-z])/g, (_, p: string, l: string) => p + l.toUpperCase());
  for (const candidate of [name, `Script=${name}`, title, `Script=${title}`]) {
    try {
      new RegExp(`\\p{${candidate}}`, 'u');
      return candidate;
    } catch {
      // not this spelling
    }
  }
  return undefined;
}

let foldIndex: Map<string, string[]> | undefined;

/**
 * Every character equal to `ch` under simple case folding (ch itself first). Built from the
 * case mappings of all code points below U+20000 (no cased letters lie above), then checked
 * with JS's own /iu matching, which implements simple case folding.
 */
export function caseVariants(ch: string): string[] {
  if (!foldIndex) {
    foldIndex = new Map();
    const add = (key: string, c: string): void => {
      const list = foldIndex!.get(key);
      if (list) list.push(c);
      else foldIndex!.set(key, [c]);
    };
    for (let cp = 0; cp < 0x20000; cp++) {
      if (cp >= 0xd800 && cp <= 0xdfff) continue;
      const c = String.fromCodePoint(cp);
      const lo = c.toLowerCase();
      const up = c.toUpperCase();
      if (lo !== c) add(lo, c);
      if (up !== c) add(up, c);
    }
  }
  const seen = new Set<string>([ch]);
  const queue = [ch, ch.toLowerCase(), ch.toUpperCase()];
  while (queue.length > 0) {
    const c = queue.pop()!;
    for (const d of [c, ...(foldIndex.get(c) ?? [])]) {
      if (!seen.has(d)) {
        seen.add(d);
        queue.push(d, d.toLowerCase(), d.toUpperCase());
      }
    }
  }
  const re = new RegExp(`^${escapeLiteral(ch)}$`, 'iu');
  return [...seen].filter((c) => c === ch || ([...c].length === 1 && re.test(c)));
}
