// Enhanced RTMP v2 "Enhancing NetConnection connect Command": what an E-RTMP client announces in
// its connect Command Object (fourCcList, videoFourCcInfoMap, audioFourCcInfoMap, capsEx), and the
// properties the server adds to its _result to say what it supports. Pure.

import type { Amf0Object, Amf0Value } from '../../formats/amf/amf0.js';

/** FourCcInfoMask: capability flags of one codec. */
export const FourCcInfoMask = { canDecode: 0x01, canEncode: 0x02, canForward: 0x04 } as const;

/** CapsExMask: extended capabilities. */
export const CapsExMask = { reconnect: 0x01, multitrack: 0x02, modEx: 0x04, timestampNanoOffset: 0x08 } as const;

/** The codecs Feedcast takes from publishers and sends to players in Enhanced RTMP (it forwards, never transcodes here). */
export const ENHANCED_VIDEO_FOURCCS = ['avc1', 'hvc1', 'av01', 'vp09'] as const;
export const ENHANCED_AUDIO_FOURCCS = ['mp4a', 'Opus', '.mp3'] as const;

/** Multitrack and ModEx (TimestampOffsetNano included) are parsed; Reconnect is not offered. */
export const SERVER_CAPS_EX = CapsExMask.multitrack | CapsExMask.modEx | CapsExMask.timestampNanoOffset;

export interface EnhancedClientCaps {
  /** FourCCs the client named in fourCcList or either info map ('*' for any). */
  fourCcs: string[];
  capsEx: number;
}

/** The client's Enhanced RTMP announcement, or undefined for a legacy client (none of the properties). */
export function parseEnhancedConnect(commandObject: Amf0Object): EnhancedClientCaps | undefined {
  const list = commandObject['fourCcList'];
  const video = commandObject['videoFourCcInfoMap'];
  const audio = commandObject['audioFourCcInfoMap'];
  const capsEx = commandObject['capsEx'];
  if (list === undefined && video === undefined && audio === undefined && capsEx === undefined) return undefined;
  const fourCcs = new Set<string>();
  if (Array.isArray(list)) for (const v of list) if (typeof v === 'string') fourCcs.add(v);
  for (const map of [video, audio]) for (const key of Object.keys(asObject(map))) fourCcs.add(key);
  return { fourCcs: [...fourCcs], capsEx: typeof capsEx === 'number' && Number.isFinite(capsEx) ? capsEx : 0 };
}

/**
 * The properties for the _result of an E-RTMP client's connect: the codecs both sides know
 * (fourCcList), each marked CanForward in the info maps, and capsEx. A legacy client gets none.
 */
export function enhancedConnectResult(client: EnhancedClientCaps | undefined): Amf0Object {
  if (client === undefined) return {};
  const any = client.fourCcs.includes('*');
  const shared = (ours: readonly string[]): string[] => ours.filter((f) => any || client.fourCcs.includes(f));
  const infoMap = (fourCcs: readonly string[]): Amf0Object =>
    Object.fromEntries(fourCcs.map((f) => [f, FourCcInfoMask.canForward]));
  return {
    fourCcList: [...shared(ENHANCED_VIDEO_FOURCCS), ...shared(ENHANCED_AUDIO_FOURCCS)],
    videoFourCcInfoMap: infoMap(ENHANCED_VIDEO_FOURCCS),
    audioFourCcInfoMap: infoMap(ENHANCED_AUDIO_FOURCCS),
    capsEx: SERVER_CAPS_EX,
  };
}

function asObject(v: Amf0Value | undefined): Amf0Object {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) ? v : {};
}
