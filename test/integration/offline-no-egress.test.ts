// Nothing leaves the machine unasked (issue 22): the built-in demo, with every protocol on, runs in
// a network namespace whose only way out is a veth interface holding the default route. Viewers read it over HTTP-FLV, RTSP and WHEP on loopback; any packet the server sends to an
// address the config does not name (a DNS query, a STUN binding request, telemetry) would leave by
// that interface and is counted there. Before the fix werift resolved stun.l.google.com for every
// WHEP answer and held the answer ~5 s.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { FFPROBE, skipWithoutFfmpeg } from '../helpers/media-tools.js';

const ROOT = new URL('../../', import.meta.url).pathname;

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root for unshare -n and a dummy interface';
  return skipWithoutFfmpeg();
}

/** Runs in the namespace: the demo server, then its viewers, then the dummy interface's counters. */
const SCRIPT = `
set -eu
ip link set lo up
# The way out: one end of a veth pair with the default route (IPv6 off on it, so the kernel's own
# multicast listener reports do not count). Nothing answers at the other end.
ip link add fc0 type veth peer name fc1
sysctl -qw net.ipv6.conf.fc0.disable_ipv6=1 net.ipv6.conf.fc1.disable_ipv6=1
ip link set fc1 up
ip link set fc0 up
ip addr add 192.0.2.1/24 dev fc0
ip route add default dev fc0
echo "BASELINE $(ip -s -j link show fc0)"
log=$(mktemp)
node --import tsx src/main.ts > "$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$log"' EXIT
# Until the server says it is ready (bounded: 600 x 0.1 s), or it has exited.
n=0
until grep -q '"msg":"ready"' "$log"; do
  kill -0 $server 2>/dev/null || { cat "$log"; exit 3; }
  n=$((n + 1)); [ $n -lt 600 ] || { cat "$log"; exit 4; }
  sleep 0.1
done
echo "FLV $("$FFPROBE" -v error -show_entries stream=codec_name -of csv=p=0 http://127.0.0.1:8090/demo.flv | sort | tr '\\n' ' ')"
echo "RTSP $("$FFPROBE" -v error -rtsp_transport tcp -show_entries stream=codec_name -of csv=p=0 rtsp://127.0.0.1:5454/demo | sort | tr '\\n' ' ')"
node --import tsx test/helpers/whep-client-child.ts http://127.0.0.1:8090/demo/whep 3 | sed 's/^/WHEP /'
echo "EGRESS $(ip -s -j link show fc0)"
kill $server
wait $server || true
if grep -q '"level":"error"' "$log"; then echo "SERVER-ERRORS"; grep '"level":"error"' "$log"; fi
`;

test(
  'the demo serves HTTP-FLV, RTSP and WHEP with no packet to any address the config does not name',
  { skip: skipReason() },
  async () => {
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn('unshare', ['-n', 'sh', '-c', SCRIPT], {
        cwd: ROOT,
        env: { ...process.env, FFPROBE, FEEDCAST_LOG_FORMAT: 'json' },
      });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.stderr.on('data', (d: Buffer) => (text += d.toString()));
      child.on('close', (code) => resolve({ code, text }));
    });
    assert.equal(out.code, 0, out.text);
    const lines = out.text.split('\n');
    const field = (prefix: string): string[] =>
      lines.filter((l) => l.startsWith(prefix + ' ')).map((l) => l.slice(prefix.length + 1));

    assert.match(field('FLV')[0] ?? '', /aac h264/, out.text);
    assert.match(field('RTSP')[0] ?? '', /aac h264/, out.text);
    const answers = field('WHEP').map((l) => JSON.parse(l) as { status: number; answerMs: number; hostCandidates: string[] });
    assert.equal(answers.length, 3, out.text);
    for (const a of answers) {
      assert.equal(a.status, 201, out.text);
      assert.ok(a.hostCandidates.length > 0, 'the answer carries host candidates');
    }
    type Link = { stats64?: { tx: { packets: number; bytes: number } } };
    const [before] = JSON.parse(field('BASELINE')[0] ?? '[]') as Link[];
    const [after] = JSON.parse(field('EGRESS')[0] ?? '[]') as Link[];
    assert.ok(before?.stats64 !== undefined && after?.stats64 !== undefined, out.text);
    const sent = after.stats64.tx.packets - before.stats64.tx.packets;
    assert.equal(sent, 0, `packets sent off the machine: ${sent} (${after.stats64.tx.bytes - before.stats64.tx.bytes} bytes)`);
    assert.ok(!out.text.includes('SERVER-ERRORS'), out.text);
    // For the record (not a threshold: the machine may be busy): how long each WHEP answer took.
    process.stdout.write(`# WHEP answers: ${answers.map((a) => `${a.answerMs.toFixed(0)} ms`).join(', ')}\n`);
  },
);
