// Program specific information: the program association table (ISO/IEC 13818-1 2.4.4.3) and
// the program map table (2.4.4.8) with the descriptors Feedcast reads and writes (2.6).

import { ByteReader } from '../bytes/byte-reader.js';
import type { ByteWriter } from '../bytes/byte-writer.js';
import { crc32 } from './crc32.js';
import { MalformedInputError } from '../../errors.js';

export const TableId = { pat: 0x00, pmt: 0x02 } as const;

/** stream_type values (13818-1 Table 2-34 and registrations). */
export const StreamType = {
  mpeg1Video: 0x01,
  mpeg2Video: 0x02,
  mpeg1Audio: 0x03,
  mpeg2Audio: 0x04,
  privatePes: 0x06,
  aacAdts: 0x0f,
  h264: 0x1b,
  h265: 0x24,
  ac3: 0x81,
} as const;

export const DescriptorTag = {
  registration: 0x05,
  iso639Language: 0x0a,
  ac3: 0x6a,
  extension: 0x7f,
  /** AV1_video_descriptor (AOM "Carriage of AV1 in MPEG-2 TS" 2.2): the four first bytes of av1C. */
  av1Video: 0x80,
} as const;

/** format_identifier of the registration descriptor for Opus: 'Opus'. */
export const OPUS_FORMAT_ID = 0x4f70_7573;
/** format_identifier of the registration descriptor for AV1: 'AV01' ('AV1 ' in drafts before v1.0). */
export const AV1_FORMAT_ID = 0x4156_3031;
export const AV1_DRAFT_FORMAT_ID = 0x4156_3120;
/** descriptor_tag_extension of the DVB extension descriptor carrying the Opus channel config. */
export const OPUS_EXTENSION_TAG = 0x80;

export interface PsiSection {
  tableId: number;
  /** transport_stream_id (PAT) or program_number (PMT). */
  tableIdExtension: number;
  version: number;
  currentNext: boolean;
  sectionNumber: number;
  lastSectionNumber: number;
  /** The table's body: after last_section_number, before CRC_32. */
  body: ByteReader;
}

/**
 * Parses one long-form section, checking its CRC.
 *
 *  8 table_id | 1 section_syntax_indicator | 1 '0' | 2 reserved | 12 section_length
 *  | 16 transport_stream_id / program_number | 2 reserved | 5 version_number
 *  | 1 current_next_indicator | 8 section_number | 8 last_section_number | body | 32 CRC_32
 */
export function parsePsiSection(buf: Buffer): PsiSection {
  const r = new ByteReader(buf, 'mpegts psi');
  const tableId = r.u8();
  const b = r.u16();
  if ((b & 0x8000) === 0) r.fail(`table 0x${tableId.toString(16)} has section_syntax_indicator 0`);
  const sectionLength = b & 0x0fff;
  if (sectionLength > 1021) r.fail(`section_length ${sectionLength} > 1021`);
  if (sectionLength < 9) r.fail(`section_length ${sectionLength} < 9`);
  const section = r.sub(sectionLength);
  const crc = crc32(buf, 0, 3 + sectionLength);
  if (crc !== 0) {
    throw new MalformedInputError('mpegts psi', 0, `CRC mismatch in table 0x${tableId.toString(16)}`);
  }
  const tableIdExtension = section.u16();
  const v = section.u8();
  const sectionNumber = section.u8();
  const lastSectionNumber = section.u8();
  const body = section.sub(section.remaining - 4);
  return {
    tableId,
    tableIdExtension,
    version: (v >> 1) & 0x1f,
    currentNext: (v & 1) === 1,
    sectionNumber,
    lastSectionNumber,
    body,
  };
}

export interface PatEntry {
  programNumber: number;
  pmtPid: number;
}

/** PAT body: { 16 program_number | 3 reserved | 13 program_map_PID (network_PID for 0) }... */
export function parsePat(section: PsiSection): PatEntry[] {
  const r = section.body;
  if (section.tableId !== TableId.pat) r.fail(`table_id 0x${section.tableId.toString(16)} on the PAT PID`);
  const programs: PatEntry[] = [];
  while (r.remaining >= 4) {
    const programNumber = r.u16();
    const pid = r.u16() & 0x1fff;
    if (programNumber !== 0) programs.push({ programNumber, pmtPid: pid });
  }
  return programs;
}

export interface Descriptor {
  tag: number;
  data: Buffer;
}

export interface PmtStream {
  streamType: number;
  pid: number;
  descriptors: Descriptor[];
}

export interface Pmt {
  programNumber: number;
  version: number;
  pcrPid: number;
  descriptors: Descriptor[];
  streams: PmtStream[];
}

/** Descriptor loop: { 8 descriptor_tag | 8 descriptor_length | data }... */
function parseDescriptors(r: ByteReader): Descriptor[] {
  const out: Descriptor[] = [];
  while (r.remaining > 0) {
    const tag = r.u8();
    const length = r.u8();
    out.push({ tag, data: r.bytes(length) });
  }
  return out;
}

/**
 * PMT body:
 *  3 reserved | 13 PCR_PID | 4 reserved | 12 program_info_length | descriptors
 *  { 8 stream_type | 3 reserved | 13 elementary_PID | 4 reserved | 12 ES_info_length | descriptors }...
 */
export function parsePmt(section: PsiSection): Pmt {
  const r = section.body;
  if (section.tableId !== TableId.pmt) r.fail(`table_id 0x${section.tableId.toString(16)} on a PMT PID`);
  const pcrPid = r.u16() & 0x1fff;
  const descriptors = parseDescriptors(r.sub(r.u16() & 0x0fff));
  const streams: PmtStream[] = [];
  while (r.remaining > 0) {
    const streamType = r.u8();
    const pid = r.u16() & 0x1fff;
    const esDescriptors = parseDescriptors(r.sub(r.u16() & 0x0fff));
    streams.push({ streamType, pid, descriptors: esDescriptors });
  }
  return { programNumber: section.tableIdExtension, version: section.version, pcrPid, descriptors, streams };
}

/** The format_identifier of a registration descriptor among `descriptors`, if any. */
export function registrationFormat(descriptors: readonly Descriptor[]): number | undefined {
  const d = descriptors.find((x) => x.tag === DescriptorTag.registration && x.data.length >= 4);
  return d?.data.readUInt32BE(0);
}

/** Channels from the Opus extension descriptor's channel_config_code (default 2). */
export function opusChannels(descriptors: readonly Descriptor[]): number {
  const d = descriptors.find((x) => x.tag === DescriptorTag.extension && x.data[0] === OPUS_EXTENSION_TAG);
  const code = d?.data[1];
  if (code === undefined) return 2;
  if (code === 0) return 2; // dual mono
  if (code <= 8) return code;
  if (code >= 0x81 && code <= 0x88) return code - 0x80;
  return 2;
}

// ---- writing ----

export interface PmtStreamOut {
  streamType: number;
  pid: number;
  /** Descriptors, each already laid out as tag, length, data. */
  descriptors?: Buffer;
}

export interface PmtOut {
  programNumber: number;
  version: number;
  pcrPid: number;
  streams: readonly PmtStreamOut[];
}

/** Bytes of the PAT section for one program (pointer field excluded). */
export const PAT_SECTION_SIZE = 16;

/** Bytes of a PMT section (pointer field excluded). */
export function pmtSectionSize(pmt: PmtOut): number {
  let size = 12 + 4; // header through program_info_length (no program descriptors), CRC_32
  for (const s of pmt.streams) size += 5 + (s.descriptors?.length ?? 0);
  return size;
}

function writeSectionHeader(w: ByteWriter, tableId: number, sectionSize: number, extension: number, version: number): void {
  w.u8(tableId);
  w.u16(0xb000 | (sectionSize - 3)); // section_syntax_indicator 1, '0', reserved 11, section_length
  w.u16(extension);
  w.u8(0xc1 | ((version & 0x1f) << 1)); // reserved 11, version_number, current_next_indicator 1
  w.u8(0); // section_number
  w.u8(0); // last_section_number
}

function writeCrc(w: ByteWriter, start: number): void {
  w.u32(crc32(w.buf, start, w.pos));
}

/** Writes a PAT section announcing one program. */
export function writePat(w: ByteWriter, transportStreamId: number, programNumber: number, pmtPid: number, version = 0): void {
  const start = w.pos;
  writeSectionHeader(w, TableId.pat, PAT_SECTION_SIZE, transportStreamId, version);
  w.u16(programNumber);
  w.u16(0xe000 | pmtPid); // reserved 111 + program_map_PID
  writeCrc(w, start);
}

/** Writes a PMT section. */
export function writePmt(w: ByteWriter, pmt: PmtOut): void {
  const start = w.pos;
  writeSectionHeader(w, TableId.pmt, pmtSectionSize(pmt), pmt.programNumber, pmt.version);
  w.u16(0xe000 | pmt.pcrPid); // reserved 111 + PCR_PID
  w.u16(0xf000); // reserved 1111 + program_info_length 0
  for (const s of pmt.streams) {
    const desc = s.descriptors ?? Buffer.alloc(0);
    w.u8(s.streamType);
    w.u16(0xe000 | s.pid); // reserved 111 + elementary_PID
    w.u16(0xf000 | desc.length); // reserved 1111 + ES_info_length
    w.bytes(desc);
  }
  writeCrc(w, start);
}
