// Splits ffserver.conf text into directive lines and section tags, following ffserver's lexical rules (ref §2.1):
// one directive a line, `#` comment lines, words optionally quoted with "…" or '…' (no escapes), <Feed NAME> … </Feed>.
// Unlike ffserver, an unquoted word that starts with `#` begins a comment that runs to the end of the line
// (`<Feed feed1.ffm>  # cam`, `AudioBitRate 32  # kbit/s`): ffserver made it part of the arguments, or ignored it.

export type SectionKind = 'feed' | 'stream' | 'redirect';

export const SECTION_TAG: Readonly<Record<SectionKind, string>> = { feed: 'Feed', stream: 'Stream', redirect: 'Redirect' };

export type LexEntry =
  | { readonly kind: 'directive'; readonly line: number; readonly name: string; readonly args: readonly string[] }
  | { readonly kind: 'open'; readonly line: number; readonly section: SectionKind; readonly name: string }
  | { readonly kind: 'close'; readonly line: number; readonly section: SectionKind };

export interface LexProblem {
  readonly line: number;
  readonly severity: 'error' | 'warning';
  readonly message: string;
}

export interface LexResult {
  readonly entries: LexEntry[];
  readonly problems: LexProblem[];
}

const SPACE = /[ \t\n\v\f\r]/;

/**
 * ffserver's get_arg: skip blanks, then one word or one quoted string (the quote ends it; no escapes).
 * An unquoted word starting with `#` ends the line (a trailing comment); `a#b` is one word.
 */
function readWords(text: string): { words: string[]; unterminatedQuote: boolean } {
  const words: string[] = [];
  let i = 0;
  let unterminatedQuote = false;
  for (;;) {
    while (i < text.length && SPACE.test(text.charAt(i))) i++;
    if (i >= text.length) break;
    const c = text.charAt(i);
    if (c === '#') break;
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) {
        unterminatedQuote = true;
        words.push(text.slice(i + 1));
        break;
      }
      words.push(text.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < text.length && !SPACE.test(text.charAt(j))) j++;
      words.push(text.slice(i, j));
      i = j;
    }
  }
  return { words, unterminatedQuote };
}

function sectionOf(word: string): SectionKind | undefined {
  const lower = word.toLowerCase();
  return lower === 'feed' || lower === 'stream' || lower === 'redirect' ? lower : undefined;
}

const SECTION_USAGE = 'sections are <Feed NAME>, <Stream NAME> and <Redirect NAME>';

/** Lexes a whole file. Never throws: problems are returned with their line numbers. */
export function lexConfig(text: string): LexResult {
  const entries: LexEntry[] = [];
  const problems: LexProblem[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((rawLine, index) => {
    const line = index + 1;
    const trimmed = rawLine.replace(/^[ \t\n\v\f\r]+/, '');
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const { words, unterminatedQuote } = readWords(trimmed);
    const [head, ...args] = words;
    if (head === undefined) return;
    if (unterminatedQuote) {
      problems.push({
        line,
        severity: 'warning',
        message: 'unterminated quote: the value runs to the end of the line; add the closing quote',
      });
    }
    const error = (message: string): void => void problems.push({ line, severity: 'error', message });
    const warn = (message: string): void => void problems.push({ line, severity: 'warning', message });

    if (head.startsWith('</')) {
      const m = /^<\/([A-Za-z]+)(>?)$/.exec(head);
      const section = m?.[1] !== undefined ? sectionOf(m[1]) : undefined;
      if (m === null || section === undefined) {
        error(`unknown closing tag '${head}'; ${SECTION_USAGE}, closed by </Feed>, </Stream> and </Redirect>`);
        return;
      }
      if (m[2] === '' && !(args.length === 1 && args[0] === '>')) warn(`'${head}' is missing its '>'`);
      else if (args.length > (m[2] === '' ? 1 : 0)) warn(`text after ${head} is ignored: '${args.join(' ')}'`);
      entries.push({ kind: 'close', line, section });
      return;
    }
    if (head.startsWith('<')) {
      const m = /^<([A-Za-z]+)(>?)$/.exec(head);
      const section = m?.[1] !== undefined ? sectionOf(m[1]) : undefined;
      if (m === null || section === undefined) {
        error(`unknown section '${head}'; ${SECTION_USAGE}`);
        return;
      }
      const tag = SECTION_TAG[section];
      const nameWords = args[args.length - 1] === '>' ? args.slice(0, -1) : [...args];
      const last = nameWords[nameWords.length - 1];
      const closed = m[2] === '>' || args[args.length - 1] === '>' || (last?.endsWith('>') ?? false);
      if (last !== undefined && last.endsWith('>')) nameWords[nameWords.length - 1] = last.slice(0, -1);
      const name = nameWords[0];
      if (m[2] === '>' || name === undefined || name === '') {
        error(
          `<${tag}> needs a name, e.g. <${tag} ${section === 'feed' ? 'feed1.ffm' : section === 'stream' ? 'live.flv' : 'index.html'}>`,
        );
        return;
      }
      if (nameWords.length > 1) {
        error(`<${tag} ${nameWords.join(' ')}>: a section name is one word (it is a URL path); remove the spaces`);
        return;
      }
      if (/[/\\?#\s]/.test(name)) {
        error(`<${tag} ${name}>: a section name is one URL path segment and cannot contain '/', '\\', '?', '#' or spaces`);
        return;
      }
      if (!closed) warn(`<${tag} ${name} is missing its closing '>'`);
      entries.push({ kind: 'open', line, section, name });
      return;
    }
    entries.push({ kind: 'directive', line, name: head, args });
  });
  return { entries, problems };
}
