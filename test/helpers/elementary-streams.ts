// Feedcast frames of one video track written as an elementary stream ffmpeg 5.1 reads (H.265
// Annex B, AV1 low-overhead OBUs, VP9 in IVF) and decoded by ffmpeg: how the tests check a
// format ffmpeg 5.1 cannot read (Enhanced RTMP FLV) carried pictures that decode.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lengthPrefixedToAnnexB } from '../../src/formats/h264/nal.js';
import { parseHvcc } from '../../src/formats/h265/hvcc.js';
import type { Frame } from '../../src/media/frame.js';
import type { Track } from '../../src/media/track.js';
import { FFPROBE, run } from './media-tools.js';

const START_CODE = Buffer.from([0, 0, 0, 1]);
const AV1_TEMPORAL_DELIMITER = Buffer.from([0x12, 0x00]);

/** The bytes of the elementary stream and ffmpeg's demuxer name for it. */
export function elementaryStream(track: Track, frames: readonly Frame[]): { format: string; bytes: Buffer } {
  switch (track.codec) {
    case 'h265': {
      const hvcc = parseHvcc(track.config ?? Buffer.alloc(0));
      const parameterSets = [...hvcc.vps, ...hvcc.sps, ...hvcc.pps].flatMap((n) => [START_CODE, Buffer.from(n)]);
      const parts = frames.flatMap((f) => [...(f.keyframe ? parameterSets : []), lengthPrefixedToAnnexB(f.data)]);
      return { format: 'hevc', bytes: Buffer.concat(parts) };
    }
    case 'av1':
      return { format: 'obu', bytes: Buffer.concat(frames.flatMap((f) => [AV1_TEMPORAL_DELIMITER, f.data])) };
    case 'vp9': {
      // IVF: 32-byte file header ('DKIF', version 0, header size, FourCC, size, rate, scale, frame count),
      // then per frame a 12-byte header (size, 64-bit pts) and the frame.
      const header = Buffer.alloc(32);
      header.write('DKIF', 0, 'latin1');
      header.writeUInt16LE(32, 6);
      header.write('VP90', 8, 'latin1');
      header.writeUInt16LE(track.width ?? 0, 12);
      header.writeUInt16LE(track.height ?? 0, 14);
      header.writeUInt32LE(90_000, 16);
      header.writeUInt32LE(1, 20);
      header.writeUInt32LE(frames.length, 24);
      const parts = frames.flatMap((f) => {
        const h = Buffer.alloc(12);
        h.writeUInt32LE(f.data.length, 0);
        h.writeUInt32LE(f.pts90k % 2 ** 32, 4);
        return [h, f.data];
      });
      return { format: 'ivf', bytes: Buffer.concat([header, ...parts]) };
    }
    default:
      throw new Error(`no elementary stream format for ${track.codec}`);
  }
}

/** ffprobe decodes every frame of the stream: codec name, size and the number of frames decoded. */
export async function decodeElementaryStream(
  track: Track,
  frames: readonly Frame[],
): Promise<{ codec: string; width: number; height: number; decodedFrames: number; errors: string }> {
  const { format, bytes } = elementaryStream(track, frames);
  const dir = mkdtempSync(join(tmpdir(), 'feedcast-es-'));
  try {
    const file = join(dir, `stream.${format}`);
    writeFileSync(file, bytes);
    const r = await run(
      FFPROBE,
      [
        ...['-v', 'error', '-f', format, '-i', file, '-select_streams', 'v:0', '-count_frames'],
        ...['-show_entries', 'stream=codec_name,width,height,nb_read_frames', '-of', 'csv=p=0'],
      ],
      60_000,
    );
    const [codec = '', width = '0', height = '0', count = '0'] = r.stdout.trim().split(',');
    return { codec, width: Number(width), height: Number(height), decodedFrames: Number(count), errors: r.stderr.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
