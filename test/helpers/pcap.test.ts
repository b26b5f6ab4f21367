// The committed FFM capture fixtures are the TCP streams of the shared pcap (test/fixtures/README.md).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { ffmHandshakeExchanges } from './pcap.js';

const PCAP = '/work/shared/fixtures/ffm-handshake.pcap';
const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));

describe('pcap reader', { skip: existsSync(PCAP) ? false : `${PCAP} is not on this machine` }, () => {
  it('extracts the GET answer and the POST of the FFM handshake as committed', () => {
    const x = ffmHandshakeExchanges(readFileSync(PCAP));
    assert.match(x.getRequest.toString('latin1'), /^GET \/feed1\.ffm HTTP\/1\.1\r\nUser-Agent: Lavf\/57\.72\.101\r\n/);
    assert.ok(x.getAnswer.equals(fixture('ffserver-ffm-get-answer.bin')));
    assert.ok(x.postRequest.equals(fixture('ffmpeg33-ffm-post.bin')));
  });
});
