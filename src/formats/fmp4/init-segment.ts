// The fMP4/CMAF initialization segment (ISO/IEC 14496-12 8.2-8.8, CMAF 7.3.1): ftyp + moov with
// one trak per track and mvex/trex, no samples. Sample entries: avc1+avcC and hvc1+hvcC
// (14496-15 5.4, 8.4), vp08/vp09+vpcC (VP Codec ISO Media File Format Binding 1.0, 2.2-2.3),
// av01+av1C (AV1 Codec ISO Media File Format Binding 2.2-2.3), mp4a+esds (14496-14 5.6, 14496-1 7.2.6).

import type { Track } from '../../media/track.js';
import { parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { vpccOf } from '../vp9/vpcc.js';
import { box, containerBox, encodeBoxes, fullBox, UNITY_MATRIX, writeFourcc, type Box } from './box.js';

/** A track as fMP4 carries it: the codecs with an MP4 sample entry here. */
export interface Fmp4Track {
  /** track_ID, 1-based (the feed's track id + 1). */
  readonly trackId: number;
  readonly feedTrackId: number;
  readonly kind: 'video' | 'audio';
  readonly codec: 'h264' | 'h265' | 'av1' | 'vp8' | 'vp9' | 'aac';
  /** Units per second of this track's times: 90 000 for video, the sample rate for audio. */
  readonly timescale: number;
  /** The payload of avcC, hvcC, av1C or vpcC, or the AudioSpecificConfig. */
  readonly config: Buffer;
  readonly width: number;
  readonly height: number;
  readonly sampleRate: number;
  readonly channels: number;
}

/** The fMP4 view of a feed track, or undefined when fMP4 here cannot carry it (codec or missing config). */
export function fmp4TrackOf(track: Track): Fmp4Track | undefined {
  if (track.codec === 'vp8' || track.codec === 'vp9') {
    const width = track.width ?? 0;
    const height = track.height ?? 0;
    return {
      trackId: track.id + 1,
      feedTrackId: track.id,
      kind: 'video',
      codec: track.codec,
      timescale: 90_000,
      config: vpccOf(track),
      width,
      height,
      sampleRate: 0,
      channels: 0,
    };
  }
  const config = track.config;
  if (config === undefined || config.length === 0) return undefined;
  if (track.codec === 'h264' || track.codec === 'h265' || track.codec === 'av1') {
    return {
      trackId: track.id + 1,
      feedTrackId: track.id,
      kind: 'video',
      codec: track.codec,
      timescale: 90_000,
      config,
      width: track.width ?? 0,
      height: track.height ?? 0,
      sampleRate: 0,
      channels: 0,
    };
  }
  if (track.codec === 'aac') {
    const asc = parseAudioSpecificConfig(config);
    const sampleRate = track.sampleRate ?? asc.sampleRate;
    return {
      trackId: track.id + 1,
      feedTrackId: track.id,
      kind: 'audio',
      codec: 'aac',
      timescale: sampleRate,
      config,
      width: 0,
      height: 0,
      sampleRate,
      channels: track.channels ?? (asc.channels || 2),
    };
  }
  return undefined;
}

/** ftyp (14496-12 4.3): major brand, minor version, compatible brands. */
export function ftypBox(): Box {
  const brands = ['iso6', 'cmfc', 'isom', 'mp41'];
  return box('ftyp', 8 + 4 * brands.length, (w) => {
    writeFourcc(w, 'iso6');
    w.u32(0);
    for (const b of brands) writeFourcc(w, b);
  });
}

function writeMatrix(w: ByteWriter): void {
  for (const v of UNITY_MATRIX) w.u32(v);
}

/** mvhd v0 (8.2.2): times, timescale 1000, duration 0 (fragmented), rate, volume, matrix, next_track_ID. */
export function mvhdBox(nextTrackId: number): Box {
  return fullBox('mvhd', 0, 0, 96, (w) => {
    w.u32(0).u32(0); // creation_time, modification_time
    w.u32(1000).u32(0); // timescale, duration
    w.u32(0x00010000).u16(0x0100).fill(0, 10); // rate 1.0, volume 1.0, reserved
    writeMatrix(w);
    w.fill(0, 24); // pre_defined
    w.u32(nextTrackId);
  });
}

/** tkhd v0 (8.3.2), flags track_enabled | track_in_movie. */
export function tkhdBox(t: Fmp4Track): Box {
  return fullBox('tkhd', 0, 0x000003, 80, (w) => {
    w.u32(0).u32(0); // creation_time, modification_time
    w.u32(t.trackId).u32(0); // track_ID, reserved
    w.u32(0); // duration
    w.fill(0, 8); // reserved
    w.u16(0).u16(0); // layer, alternate_group
    w.u16(t.kind === 'audio' ? 0x0100 : 0).u16(0); // volume, reserved
    writeMatrix(w);
    w.u32(t.width * 0x10000).u32(t.height * 0x10000); // 16.16 fixed point
  });
}

/** mdhd v0 (8.4.2): timescale, duration 0, language "und". */
export function mdhdBox(t: Fmp4Track): Box {
  return fullBox('mdhd', 0, 0, 20, (w) => {
    w.u32(0).u32(0).u32(t.timescale).u32(0);
    w.u16(0x55c4).u16(0); // 'und' packed ISO-639-2/T, pre_defined
  });
}

/** hdlr (8.4.3): handler_type vide/soun and a name. */
export function hdlrBox(kind: 'video' | 'audio'): Box {
  const name = Buffer.from(kind === 'video' ? 'VideoHandler\0' : 'SoundHandler\0', 'latin1');
  return fullBox('hdlr', 0, 0, 20 + name.length, (w) => {
    w.u32(0);
    writeFourcc(w, kind === 'video' ? 'vide' : 'soun');
    w.fill(0, 12);
    w.bytes(name);
  });
}

/** vmhd (12.1.2), flags 1: graphicsmode copy, opcolor 0. */
export function vmhdBox(): Box {
  return fullBox('vmhd', 0, 1, 8, (w) => w.fill(0, 8));
}

/** smhd (12.2.2): balance 0. */
export function smhdBox(): Box {
  return fullBox('smhd', 0, 0, 4, (w) => w.fill(0, 4));
}

/** dinf/dref (8.7.1-8.7.2) with one self-contained 'url ' entry (flags 1). */
export function dinfBox(): Box {
  const url = fullBox('url ', 0, 1, 0, () => undefined);
  return containerBox('dinf', [fullBox('dref', 0, 0, 4, (w) => w.u32(1), [url])]);
}

const SAMPLE_ENTRY = { h264: 'avc1', h265: 'hvc1', av1: 'av01', vp8: 'vp08', vp9: 'vp09' } as const;
const CONFIG_BOX = { h264: 'avcC', h265: 'hvcC', av1: 'av1C', vp8: 'vpcC', vp9: 'vpcC' } as const;

/** VisualSampleEntry (12.1.3) avc1/hvc1/av01/vp08/vp09 with its configuration box. */
export function visualSampleEntry(t: Fmp4Track): Box {
  if (t.codec === 'aac') throw new Error('fmp4: an AAC track has no visual sample entry');
  const codec = t.codec;
  const configBox = box(CONFIG_BOX[codec], t.config.length, (w) => w.bytes(t.config));
  return box(
    SAMPLE_ENTRY[codec],
    78,
    (w) => {
      w.fill(0, 6).u16(1); // reserved, data_reference_index
      w.u16(0).u16(0).fill(0, 12); // pre_defined, reserved, pre_defined
      w.u16(t.width).u16(t.height);
      w.u32(0x00480000).u32(0x00480000); // 72 dpi
      w.u32(0).u16(1); // reserved, frame_count
      w.fill(0, 32); // compressorname
      w.u16(0x0018).u16(0xffff); // depth, pre_defined = -1
    },
    [configBox],
  );
}

/** An MPEG-4 descriptor (14496-1 8.3.3): tag, then the size in 7-bit groups. */
function descriptorSize(payload: number): number {
  return 1 + sizeFieldLength(payload) + payload;
}
function sizeFieldLength(payload: number): number {
  return payload < 0x80 ? 1 : payload < 0x4000 ? 2 : payload < 0x200000 ? 3 : 4;
}
function writeDescriptorHeader(w: ByteWriter, tag: number, payload: number): void {
  w.u8(tag);
  const n = sizeFieldLength(payload);
  for (let i = n - 1; i >= 0; i--) w.u8(((payload >>> (7 * i)) & 0x7f) | (i > 0 ? 0x80 : 0));
}

/** esds (14496-14 5.6): ES_Descriptor > DecoderConfigDescriptor (AAC, 0x40) > DecoderSpecificInfo (ASC), SLConfig. */
export function esdsBox(t: Fmp4Track): Box {
  const dsi = t.config.length;
  const decoderConfig = 13 + descriptorSize(dsi);
  const esPayload = 3 + descriptorSize(decoderConfig) + descriptorSize(1);
  return fullBox('esds', 0, 0, descriptorSize(esPayload), (w) => {
    writeDescriptorHeader(w, 0x03, esPayload);
    w.u16(t.trackId).u8(0); // ES_ID, flags
    writeDescriptorHeader(w, 0x04, decoderConfig);
    w.u8(0x40).u8(0x15); // objectTypeIndication: MPEG-4 audio; streamType audio (5) << 2 | upStream 0 | reserved 1
    w.u24(0).u32(0).u32(0); // bufferSizeDB, maxBitrate, avgBitrate
    writeDescriptorHeader(w, 0x05, dsi);
    w.bytes(t.config);
    writeDescriptorHeader(w, 0x06, 1);
    w.u8(0x02); // SLConfigDescriptor predefined = 2 (MP4)
  });
}

/** AudioSampleEntry (12.2.3) mp4a with esds. */
export function audioSampleEntry(t: Fmp4Track): Box {
  return box(
    'mp4a',
    28,
    (w) => {
      w.fill(0, 6).u16(1); // reserved, data_reference_index
      w.fill(0, 8); // reserved
      w.u16(t.channels).u16(16); // channelcount, samplesize
      w.u16(0).u16(0); // pre_defined, reserved
      w.u32((t.sampleRate & 0xffff) * 0x10000); // samplerate 16.16
    },
    [esdsBox(t)],
  );
}

/** stbl (8.5.1) of a fragmented file: one sample entry, empty stts/stsc/stsz/stco. */
export function stblBox(t: Fmp4Track): Box {
  const entry = t.kind === 'video' ? visualSampleEntry(t) : audioSampleEntry(t);
  return containerBox('stbl', [
    fullBox('stsd', 0, 0, 4, (w) => w.u32(1), [entry]),
    fullBox('stts', 0, 0, 4, (w) => w.u32(0)),
    fullBox('stsc', 0, 0, 4, (w) => w.u32(0)),
    fullBox('stsz', 0, 0, 8, (w) => w.u32(0).u32(0)),
    fullBox('stco', 0, 0, 4, (w) => w.u32(0)),
  ]);
}

export function trakBox(t: Fmp4Track): Box {
  const minf = containerBox('minf', [t.kind === 'video' ? vmhdBox() : smhdBox(), dinfBox(), stblBox(t)]);
  const mdia = containerBox('mdia', [mdhdBox(t), hdlrBox(t.kind), minf]);
  return containerBox('trak', [tkhdBox(t), mdia]);
}

/** trex (8.8.3): defaults for the track's fragments (all given per sample in trun). */
export function trexBox(t: Fmp4Track): Box {
  return fullBox('trex', 0, 0, 20, (w) => w.u32(t.trackId).u32(1).u32(0).u32(0).u32(0));
}

export function moovBox(tracks: readonly Fmp4Track[]): Box {
  const nextTrackId = tracks.reduce((n, t) => Math.max(n, t.trackId), 0) + 1;
  return containerBox('moov', [mvhdBox(nextTrackId), ...tracks.map(trakBox), containerBox('mvex', tracks.map(trexBox))]);
}

/** ftyp + moov: what a player needs before the first fragment. */
export function encodeInitSegment(tracks: readonly Fmp4Track[]): Buffer {
  return encodeBoxes([ftypBox(), moovBox(tracks)]);
}
