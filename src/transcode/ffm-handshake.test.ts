// The FFM2 handshake answer (ffserver-reference.md §3.2): <Stream> encoder directives turned into
// S2VI/S2AU and CPRV AVOption strings, the variants Feedcast carries, and the default.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../config/config.js';
import { encodeFfmHeader, FFM_CODEC_IDS, parseFfmHeader } from '../formats/ffm/ffm-header.js';
import { avOptionsOfArgs, DEFAULT_FFM_STREAMS, ffmHandshakeHeader } from './ffm-handshake.js';

describe('FFM handshake header', () => {
  it('splits CLI encoder options into generic AVOptions and codec-private ones, rates in bit/s', () => {
    assert.deepEqual(
      avOptionsOfArgs([
        '-s',
        '640x360',
        '-r',
        '25',
        '-g',
        '50',
        '-b:v',
        '400k',
        '-maxrate:v',
        '1M',
        '-pix_fmt',
        'yuv420p',
        '-preset:v',
        'veryfast',
        '-tag:v',
        'avc1',
      ]),
      {
        generic: [
          ['video_size', '640x360'],
          ['g', '50'],
          ['b', '400000'],
          ['maxrate', '1000000'],
          ['pixel_format', 'yuv420p'],
        ],
        priv: [['preset', 'veryfast']],
      },
    );
  });

  it('an H.264 + AAC <Stream> becomes an AAC then an H.264 stream, with its settings and x264 live options in CPRV', async () => {
    const config = await parseConfigText(
      [
        '<Feed cam.ffm>',
        '</Feed>',
        '<Stream cam.flv>   # the web player',
        'Feed cam.ffm',
        'Format flv',
        'VideoCodec libx264',
        'VideoSize 1280x720',
        'VideoFrameRate 30',
        'VideoBitRate 2000',
        'VideoGopSize 60',
        'AudioCodec aac',
        'AudioBitRate 96',
        'AudioSampleRate 48000',
        'AudioChannels 2',
        '</Stream>',
        '',
      ].join('\n'),
      't.conf',
    );
    const header = ffmHandshakeHeader(config, 'cam');
    assert.deepEqual(
      header.streams.map((s) => [s.codecId, s.kind, s.bitRate]),
      [
        [FFM_CODEC_IDS.aac, 'audio', 96_000],
        [FFM_CODEC_IDS.h264, 'video', 2_000_000],
      ],
    );
    const [audio, video] = header.streams;
    assert.deepEqual(audio?.options, [
      ['b', '96000'],
      ['ac', '2'],
      ['ar', '48000'],
    ]);
    assert.deepEqual(video?.options.slice(0, 4), [
      ['video_size', '1280x720'],
      ['time_base', '1/30'],
      ['g', '60'],
      ['b', '2000000'],
    ]);
    assert.deepEqual(
      video?.privateOptions?.map(([k]) => k),
      ['preset', 'tune'],
    );
    // It fits one block and reads back as it was made.
    assert.deepEqual(parseFfmHeader(encodeFfmHeader(header)), header);
  });

  it('a feed whose streams need no encoding asks for H.264 + AAC at the source size', async () => {
    const config = await parseConfigText(
      '<Feed f.ffm>\n</Feed>\n<Stream f.ts>\nFeed f.ffm\nFormat mpegts\n</Stream>\n',
      't.conf',
    );
    assert.deepEqual(ffmHandshakeHeader(config, 'f').streams, DEFAULT_FFM_STREAMS);
    assert.equal(
      DEFAULT_FFM_STREAMS.some((s) => s.options.some(([k]) => k === 'video_size')),
      false,
    );
  });
});
