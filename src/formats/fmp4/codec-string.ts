// RFC 6381 codec strings for the CODECS attribute of HLS playlists and MediaSource type checks:
// avc1.PPCCLL (14496-15 E.3), hvc1.P.C.TL.CC (14496-15 E.3), av01.P.LLT.DD (AV1 ISOBMFF binding),
// mp4a.40.AOT (RFC 6381 3.3).

import { parseAudioSpecificConfig } from '../aac/audio-specific-config.js';
import { av1CodecString } from '../av1/av1c.js';
import { parseAvcc } from '../h264/avcc.js';
import { ByteReader } from '../bytes/byte-reader.js';
import type { Fmp4Track } from './init-segment.js';

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export function avcCodecString(avcc: Buffer): string {
  const a = parseAvcc(avcc);
  return `avc1.${hex2(a.profileIdc)}${hex2(a.profileCompatibility)}${hex2(a.levelIdc)}`;
}

/** hvc1.[profile space letter]profile_idc.compatibility (bit-reversed hex).tier+level.constraint bytes */
export function hevcCodecString(hvcc: Buffer): string {
  const r = new ByteReader(hvcc, 'hvcC');
  r.u8(); // configurationVersion
  const b1 = r.u8();
  const space = ['', 'A', 'B', 'C'][b1 >> 6] ?? '';
  const tier = (b1 >> 5) & 1 ? 'H' : 'L';
  const profileIdc = b1 & 0x1f;
  let compat = r.u32();
  let reversed = 0;
  for (let i = 0; i < 32; i++) {
    reversed = reversed * 2 + (compat & 1);
    compat >>>= 1;
  }
  const constraints = [...r.bytes(6)];
  const level = r.u8();
  while (constraints.length > 0 && constraints[constraints.length - 1] === 0) constraints.pop();
  const c = constraints.map((b) => b.toString(16).toUpperCase()).join('.');
  return `hvc1.${space}${profileIdc}.${reversed.toString(16).toUpperCase()}.${tier}${level}${c !== '' ? '.' + c : ''}`;
}

export function aacCodecString(asc: Buffer): string {
  return `mp4a.40.${parseAudioSpecificConfig(asc).objectType}`;
}

function vpField(n: number | undefined): string {
  return String(n ?? 0).padStart(2, '0');
}

export function codecString(t: Fmp4Track): string {
  switch (t.codec) {
    case 'h264':
      return avcCodecString(t.config);
    case 'h265':
      return hevcCodecString(t.config);
    case 'av1':
      return av1CodecString(t.config);
    case 'vp8':
    case 'vp9':
      // vpNN.PP.LL.DD (VP codec binding, Codecs Parameter String): profile, level, bit depth from vpcC.
      return `${t.codec === 'vp8' ? 'vp08' : 'vp09'}.${vpField(t.config[4])}.${vpField(t.config[5])}.${vpField((t.config[6] ?? 0) >> 4)}`;
    case 'aac':
      return aacCodecString(t.config);
  }
}
