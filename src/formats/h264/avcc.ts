// AVCDecoderConfigurationRecord (avcC), ISO/IEC 14496-15 5.3.3.1: the H.264 codec config that
// FLV sequence headers and MP4 carry, built from and split into SPS/PPS NAL units.
//
//  u8 configurationVersion=1, u8 AVCProfileIndication, u8 profile_compatibility,
//  u8 AVCLevelIndication, u8 (111111b | lengthSizeMinusOne), u8 (111b | numOfSequenceParameterSets),
//  { u16 length, SPS }..., u8 numOfPictureParameterSets, { u16 length, PPS }...

import { ByteReader } from '../bytes/byte-reader.js';
import { MalformedInputError } from '../../errors.js';

export interface Avcc {
  profileIdc: number;
  profileCompatibility: number;
  levelIdc: number;
  lengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
}

export function parseAvcc(buf: Buffer): Avcc {
  const r = new ByteReader(buf, 'avcC');
  const version = r.u8();
  if (version !== 1) r.fail(`configurationVersion ${version}, expected 1`);
  const profileIdc = r.u8();
  const profileCompatibility = r.u8();
  const levelIdc = r.u8();
  const lengthSize = (r.u8() & 0x03) + 1;
  const spsCount = r.u8() & 0x1f;
  const sps: Buffer[] = [];
  for (let i = 0; i < spsCount; i++) sps.push(r.bytes(r.u16()));
  const pps: Buffer[] = [];
  if (r.remaining > 0) {
    const ppsCount = r.u8();
    for (let i = 0; i < ppsCount; i++) pps.push(r.bytes(r.u16()));
  }
  if (sps.length === 0) throw new MalformedInputError('avcC', 5, 'no SPS in the configuration record');
  return { profileIdc, profileCompatibility, levelIdc, lengthSize, sps, pps };
}

export function buildAvcc(sps: readonly Uint8Array[], pps: readonly Uint8Array[]): Buffer {
  const first = sps[0];
  if (first === undefined || first.length < 4) throw new MalformedInputError('avcC', 0, 'cannot build avcC without an SPS');
  let size = 7;
  for (const s of sps) size += 2 + s.length;
  for (const p of pps) size += 2 + p.length;
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  out[pos++] = 1;
  out[pos++] = first[1] as number;
  out[pos++] = first[2] as number;
  out[pos++] = first[3] as number;
  out[pos++] = 0xff; // lengthSizeMinusOne = 3
  out[pos++] = 0xe0 | sps.length;
  for (const s of sps) {
    out.writeUInt16BE(s.length, pos);
    out.set(s, pos + 2);
    pos += 2 + s.length;
  }
  out[pos++] = pps.length;
  for (const p of pps) {
    out.writeUInt16BE(p.length, pos);
    out.set(p, pos + 2);
    pos += 2 + p.length;
  }
  return out;
}
