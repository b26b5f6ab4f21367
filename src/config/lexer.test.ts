// Lexer: ffserver's line, word, quote and section rules (ref §2.1).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lexConfig, type LexEntry } from './lexer.js';

function directives(text: string): { name: string; args: readonly string[] }[] {
  return lexConfig(text)
    .entries.filter((e): e is Extract<LexEntry, { kind: 'directive' }> => e.kind === 'directive')
    .map((e) => ({ name: e.name, args: e.args }));
}

const wordCases: { line: string; name: string; args: string[] }[] = [
  { line: 'HTTPPort 8090', name: 'HTTPPort', args: ['8090'] },
  { line: '   \tHTTPPort\t 8090   ', name: 'HTTPPort', args: ['8090'] },
  { line: 'File "/tmp/my feed.ffm"', name: 'File', args: ['/tmp/my feed.ffm'] },
  { line: "File '/tmp/my feed.ffm'", name: 'File', args: ['/tmp/my feed.ffm'] },
  { line: `Metadata title 'say "hi" now'`, name: 'Metadata', args: ['title', 'say "hi" now'] },
  { line: `Metadata title "it's"`, name: 'Metadata', args: ['title', "it's"] },
  // A quote only opens at the start of a word, as in ffserver's get_arg.
  { line: 'Launch ffmpeg -vf drawtext=text="a b"', name: 'Launch', args: ['ffmpeg', '-vf', 'drawtext=text="a', 'b"'] },
  { line: 'Metadata title ""', name: 'Metadata', args: ['title', ''] },
  { line: 'Metadata "a""b"', name: 'Metadata', args: ['a', 'b'] },
  // Issue 18: a word starting with '#' begins a trailing comment; '#' inside a word or quotes is kept.
  { line: 'HTTPPort 8090 # the port', name: 'HTTPPort', args: ['8090'] },
  { line: 'AudioBitRate 32\t#kbit/s', name: 'AudioBitRate', args: ['32'] },
  { line: 'File /tmp/x#y', name: 'File', args: ['/tmp/x#y'] },
  { line: 'Title "Channel #1" # the name', name: 'Title', args: ['Channel #1'] },
  { line: 'HTTPPort 8090\r', name: 'HTTPPort', args: ['8090'] },
];

for (const c of wordCases) {
  test(`lexer words: ${JSON.stringify(c.line)}`, () => {
    assert.deepEqual(directives(c.line), [{ name: c.name, args: c.args }]);
  });
}

test('lexer: blank lines and # comment lines are skipped, line numbers count them', () => {
  const { entries, problems } = lexConfig('\uFEFF# comment\n\n   # indented comment\nHTTPPort 1\r\n\t\nRTSPPort 2\n');
  assert.deepEqual(problems, []);
  assert.deepEqual(
    entries.map((e) => e.line),
    [4, 6],
  );
});

test('issue 18: a section tag followed by a comment opens and closes the section', () => {
  // ffserver ignored the rest of the line after a tag; Feedcast rejected `<Feed feed1.ffm>  # cam`.
  const { entries, problems } = lexConfig(
    '<Feed feed1.ffm>  # cam\n</Feed>\t# end\n<Stream a.flv> #x\n</Stream> # end of a.flv\n',
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(entries, [
    { kind: 'open', line: 1, section: 'feed', name: 'feed1.ffm' },
    { kind: 'close', line: 2, section: 'feed' },
    { kind: 'open', line: 3, section: 'stream', name: 'a.flv' },
    { kind: 'close', line: 4, section: 'stream' },
  ]);
});

test('lexer: sections, case-insensitive tags, case-sensitive names', () => {
  const { entries, problems } = lexConfig(
    '<Feed feed1.ffm>\n</Feed>\n<stream Live.flv>\n</STREAM>\n<Redirect index.html >\n</Redirect>\n',
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(entries, [
    { kind: 'open', line: 1, section: 'feed', name: 'feed1.ffm' },
    { kind: 'close', line: 2, section: 'feed' },
    { kind: 'open', line: 3, section: 'stream', name: 'Live.flv' },
    { kind: 'close', line: 4, section: 'stream' },
    { kind: 'open', line: 5, section: 'redirect', name: 'index.html' },
    { kind: 'close', line: 6, section: 'redirect' },
  ]);
});

const problemCases: { text: string; severity: 'error' | 'warning'; message: RegExp }[] = [
  { text: '<Feed>', severity: 'error', message: /<Feed> needs a name/ },
  { text: '<Feed >', severity: 'error', message: /<Feed> needs a name/ },
  { text: '<Stream a b>', severity: 'error', message: /one word/ },
  { text: '<Stream a/b>', severity: 'error', message: /cannot contain '\/'/ },
  { text: '<Foo bar>', severity: 'error', message: /unknown section '<Foo'/ },
  { text: '</Foo>', severity: 'error', message: /unknown closing tag '<\/Foo>'/ },
  { text: '<Feed feed1', severity: 'warning', message: /missing its closing '>'/ },
  { text: '</Feed', severity: 'warning', message: /missing its '>'/ },
  { text: '</Feed> trailing', severity: 'warning', message: /text after <\/Feed> is ignored/ },
  { text: 'File "/tmp/unterminated', severity: 'warning', message: /unterminated quote/ },
];

for (const c of problemCases) {
  test(`lexer problem: ${JSON.stringify(c.text)}`, () => {
    const { problems } = lexConfig(c.text);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.severity, c.severity);
    assert.match(problems[0]?.message ?? '', c.message);
    assert.equal(problems[0]?.line, 1);
  });
}

test('lexer: an unterminated quote runs to the end of the line (ffserver behaviour)', () => {
  assert.deepEqual(directives('File "/tmp/a b'), [{ name: 'File', args: ['/tmp/a b'] }]);
});
