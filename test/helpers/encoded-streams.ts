// Real encoded video for the Enhanced RTMP tests: ffmpeg encodes a test picture with libx265,
// libaom-av1 or libvpx-vp9 into fragmented MP4, and the samples come back as Feedcast frames with
// the track's config taken from ffmpeg's own hvcC / av1C / vpcC box (the records ffmpeg 7's FLV
// muxer writes in its Enhanced RTMP sequence start).

import { spawnSync } from 'node:child_process';
import { buildAv1c } from '../../src/formats/av1/av1c.js';
import { ObuType, readObus } from '../../src/formats/av1/obu.js';
import { parseBoxHeader, parseMoof, parseMoov } from '../../src/formats/fmp4/read.js';
import type { Frame } from '../../src/media/frame.js';
import type { Track } from '../../src/media/track.js';
import { FFMPEG } from './media-tools.js';

export type EncodedVideoCodec = 'h265' | 'av1' | 'vp9';

export interface EncodedStream {
  track: Track;
  frames: Frame[];
}

const ENCODER_ARGS: Record<EncodedVideoCodec, string[]> = {
  h265: ['-c:v', 'libx265', '-x265-params', 'log-level=error:keyint=25:min-keyint=25:bframes=2:scenecut=0:open-gop=0'],
  av1: ['-c:v', 'libaom-av1', '-cpu-used', '8', '-usage', 'realtime', '-g', '25', '-b:v', '200k'],
  vp9: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-g', '25', '-b:v', '200k'],
};

const CONFIG_BOX: Record<EncodedVideoCodec, string> = { h265: 'hvcC', av1: 'av1C', vp9: 'vpcC' };

/** `frameCount` pictures of 25 fps testsrc2 at `size`, encoded with the codec's usual library. */
export function encodeVideo(codec: EncodedVideoCodec, frameCount: number, size = '320x240'): EncodedStream {
  const r = spawnSync(
    FFMPEG,
    [
      ...['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25`, '-frames:v', String(frameCount)],
      ...ENCODER_ARGS[codec],
      ...['-pix_fmt', 'yuv420p', '-f', 'mp4', '-movflags', 'frag_keyframe+empty_moov+default_base_moof', '-'],
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0) throw new Error(`ffmpeg ${codec}: ${r.stderr.toString()}`);
  return readFragmentedMp4(r.stdout, codec);
}

/** The one video track of a fragmented MP4 as ffmpeg writes it (moov, then moof + mdat pairs). */
function readFragmentedMp4(mp4: Buffer, codec: EncodedVideoCodec): EncodedStream {
  let track: Track | undefined;
  let timescale = 90_000;
  const frames: Frame[] = [];
  for (let pos = 0; pos < mp4.length;) {
    const box = parseBoxHeader(mp4, pos);
    if (box === undefined) throw new Error(`mp4: cut box at ${pos}`);
    const bytes = mp4.subarray(pos, pos + box.size);
    if (box.type === 'moov') {
      const info = parseMoov(bytes)[0];
      if (info === undefined) throw new Error('mp4: no track');
      timescale = info.timescale;
      const config = configBox(info.stsd, CONFIG_BOX[codec]);
      track = { id: 0, kind: 'video', codec, config, width: info.width, height: info.height };
    } else if (box.type === 'moof') {
      for (const fragment of parseMoof(bytes)) {
        let dataAt = pos + fragment.dataOffset;
        let dts = fragment.baseDecodeTime;
        for (const s of fragment.samples) {
          const dts90k = Math.round((dts * 90_000) / timescale);
          const pts90k = Math.round(((dts + s.compositionOffset) * 90_000) / timescale);
          frames.push({
            trackId: 0,
            dts90k,
            pts90k,
            keyframe: s.keyframe,
            data: Buffer.from(mp4.subarray(dataAt, dataAt + s.size)),
          });
          dataAt += s.size;
          dts += s.duration;
        }
      }
    }
    pos += box.size;
  }
  if (track === undefined) throw new Error('mp4: no moov');
  if (codec === 'av1' && track.config?.length === 0) {
    // ffmpeg 5.1 writes an empty av1C when libaom gives no global header: make the record ffmpeg
    // writes once it has one (av1c.test.ts checks it is byte for byte the same) from the stream's.
    const sequence = frames.flatMap((f) => readObus(f.data)).find((o) => o.type === ObuType.sequenceHeader);
    if (sequence === undefined) throw new Error('mp4: AV1 without a sequence header');
    track = { ...track, config: buildAv1c(sequence) };
  }
  return { track, frames };
}

/** The payload of the config box (hvcC, av1C, vpcC with its version and flags) inside an stsd. */
function configBox(stsd: Buffer, type: string): Buffer {
  const at = stsd.indexOf(type, 0, 'latin1');
  if (at < 4) throw new Error(`mp4: no ${type} in the sample entry`);
  const size = stsd.readUInt32BE(at - 4);
  return Buffer.from(stsd.subarray(at + 4, at - 4 + size));
}
