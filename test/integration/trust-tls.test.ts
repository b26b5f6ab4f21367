// Trust (issue 11): HTTPS and RTMPS with certificates from the config, made by openssl at test time.
// Real clients: ffmpeg publishes over RTMPS, ffprobe reads HTTP-FLV over HTTPS and plays RTMPS; the
// certificate files are replaced and new connections get the new certificate without a restart.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect, type PeerCertificate } from 'node:tls';
import { parseConfigText } from '../../src/config/config.js';
import { silentLogger } from '../../src/observability/logger.js';
import { startServer } from '../../src/server.js';
import { probePackets, publish, skipWithoutFfmpeg } from '../helpers/media-tools.js';
import { waitFor } from '../helpers/test-server.js';

const skip =
  skipWithoutFfmpeg() ||
  (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0 ? false : 'openssl is needed to make a test certificate');

/** A self-signed certificate for 127.0.0.1 / localhost, written to cert.pem and key.pem in `dir`. */
function makeCertificate(dir: string, cn: string): void {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-keyout',
      join(dir, 'key.new'),
      '-out',
      join(dir, 'cert.new'),
    ],
    { stdio: 'ignore' },
  );
  // Key first, then the certificate: the pair is consistent once the certificate lands.
  execFileSync('mv', [join(dir, 'key.new'), join(dir, 'key.pem')]);
  execFileSync('mv', [join(dir, 'cert.new'), join(dir, 'cert.pem')]);
}

function peerCertificate(port: number, ca: Buffer): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', ca, servername: 'localhost', rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.on('error', reject);
  });
}

test(
  'HTTPS and RTMPS: real clients publish and read over TLS; replaced certificates are used without a restart',
  { skip, timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'feedcast-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    makeCertificate(dir, 'feedcast-one');
    const parsed = await parseConfigText(
      `HTTPSPort 1\nRTMPSPort 2\nSSLCertificate ${dir}/cert.pem\nSSLCertificateKey ${dir}/key.pem\n<Feed feed1.ffm>\nPublishSecret s3\n</Feed>\n`,
      'tls.conf',
    );
    // Port 0 everywhere (the config needs real numbers to parse; the listeners take free ports).
    const config = {
      ...parsed,
      http: { port: 0, bindAddress: '127.0.0.1' },
      rtmp: { ...parsed.rtmp, port: 0, bindAddress: '127.0.0.1' },
      rtsp: { ...parsed.rtsp, port: undefined },
      tls: { ...parsed.tls, httpsPort: 0, rtmpsPort: 0 },
    };
    const server = await startServer(config, { log: silentLogger });
    t.after(() => server.close());
    assert.ok(server.httpsPort !== undefined && server.rtmpsPort !== undefined);
    const ca = readFileSync(join(dir, 'cert.pem'));

    // HTTPS serves the same URLs, verified against the certificate.
    const health = await new Promise<number>((resolve, reject) => {
      get({ host: '127.0.0.1', port: server.httpsPort, path: '/api/v1/health', ca, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    assert.equal(health, 200);

    // ffmpeg publishes over RTMPS (with the secret); ffprobe reads over HTTPS and RTMPS.
    const p = publish(`rtmps://127.0.0.1:${server.rtmpsPort}/live/feed1?secret=s3`, { format: 'flv', seconds: 60 });
    t.after(() => p.stop());
    await waitFor('the RTMPS publisher', () => (server.ctx.feeds.get('feed1')?.tracks.length ?? 0) > 0, 30_000);
    const overHttps = await probePackets(`https://127.0.0.1:${server.httpsPort}/feed1.flv`, 2);
    assert.ok(
      overHttps.packets.some((x) => x.codec_type === 'video' && x.flags?.startsWith('K')),
      'HTTPS-FLV has video',
    );
    const overRtmps = await probePackets(`rtmps://127.0.0.1:${server.rtmpsPort}/live/feed1`, 2);
    assert.ok(
      overRtmps.packets.some((x) => x.codec_type === 'video'),
      'RTMPS play has video',
    );

    // Replace the certificate: new connections get the new one, on both listeners, without a restart.
    const before = await peerCertificate(server.httpsPort, ca);
    assert.match(String(before.subject.CN), /feedcast-one/);
    makeCertificate(dir, 'feedcast-two');
    await waitFor(
      'HTTPS to present the new certificate',
      async () => /feedcast-two/.test(String((await peerCertificate(server.httpsPort ?? 0, ca)).subject.CN)),
      20_000,
    );
    await waitFor(
      'RTMPS to present the new certificate',
      async () => /feedcast-two/.test(String((await peerCertificate(server.rtmpsPort ?? 0, ca)).subject.CN)),
      20_000,
    );
    // A broken pair is refused and the running certificate stays.
    execFileSync('sh', ['-c', `echo broken > ${dir}/key.pem`]);
    assert.equal(await server.reloadCertificates(), false);
    assert.match(String((await peerCertificate(server.httpsPort, ca)).subject.CN), /feedcast-two/);
    // The publisher over RTMPS was not disturbed by the reloads.
    assert.equal(p.child.exitCode, null, p.stderr());
  },
);
