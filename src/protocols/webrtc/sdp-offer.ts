// The part of an SDP offer (RFC 8866; WebRTC use per RFC 8829/8839/8843) that WHEP and WHIP decide
// on before handing it to werift: its media sections, their codecs (rtpmap/fmtp/rtcp-fb), ICE
// credentials and DTLS fingerprint. Also picks the codec Feedcast uses in each section and trims
// the offer to it, so the answer carries exactly that payload type.

import { MalformedInputError } from '../../errors.js';

/** Bounds: an offer is a few KiB; Chromium's is about 6 KiB with 30+ payload types per video section. */
export const MAX_OFFER_BYTES = 64 * 1024;
export const MAX_OFFER_LINES = 2000;
export const MAX_MEDIA_SECTIONS = 16;
/** Simulcast layers taken from one section (browsers send 2 or 3). */
export const MAX_SIMULCAST_LAYERS = 4;
/** A rid (RFC 8851 rid-id: letters, digits, '-', '_'), bounded: it becomes part of a feed name. */
const RID = /^[A-Za-z0-9_-]{1,16}$/;

export interface OfferCodec {
  readonly payloadType: number;
  /** Encoding name as written (H264, opus, VP8, rtx ...). */
  readonly name: string;
  readonly clockRate: number;
  readonly channels: number | undefined;
  /** fmtp parameters, keys lower-cased. */
  readonly fmtp: ReadonlyMap<string, string>;
  readonly feedback: readonly string[];
}

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface OfferMedia {
  readonly kind: string;
  readonly port: number;
  readonly protocol: string;
  readonly payloadTypes: readonly number[];
  readonly mid: string | undefined;
  readonly direction: MediaDirection;
  readonly codecs: readonly OfferCodec[];
  readonly iceUfrag: string | undefined;
  readonly icePwd: string | undefined;
  readonly fingerprint: string | undefined;
  /**
   * Simulcast (RFC 8853): the rids the peer sends in this section, in its a=simulcast order (first
   * alternative of each stream), each declared by an `a=rid:ID send` line. Empty without simulcast.
   */
  readonly simulcastSend: readonly string[];
}

export interface SdpOffer {
  readonly media: readonly OfferMedia[];
}

const FORMAT = 'sdp';

/**
 * Parses an SDP offer. Throws MalformedInputError (offset = line number) for text that is not an
 * SDP session a WebRTC peer could have written: no `v=0` first, a malformed `m=`/`a=rtpmap` line,
 * no media section, or a section without ICE credentials or a DTLS fingerprint.
 */
export function parseSdpOffer(text: string): SdpOffer {
  if (text.length > MAX_OFFER_BYTES) {
    throw new MalformedInputError(FORMAT, 0, `offer of ${text.length} bytes (limit ${MAX_OFFER_BYTES})`);
  }
  const lines = text.split(/\r?\n/);
  if (lines.length > MAX_OFFER_LINES) {
    throw new MalformedInputError(FORMAT, 0, `offer of ${lines.length} lines (limit ${MAX_OFFER_LINES})`);
  }
  if ((lines[0] ?? '').trim() !== 'v=0') {
    throw new MalformedInputError(FORMAT, 0, `the first line must be "v=0", got "${(lines[0] ?? '').slice(0, 40)}"`);
  }
  const session = { iceUfrag: undefined as string | undefined, icePwd: undefined as string | undefined };
  let sessionFingerprint: string | undefined;
  let sessionDirection: MediaDirection = 'sendrecv';
  interface Draft {
    kind: string;
    port: number;
    protocol: string;
    payloadTypes: number[];
    mid: string | undefined;
    direction: MediaDirection | undefined;
    rtpmap: Map<number, { name: string; clockRate: number; channels: number | undefined }>;
    fmtp: Map<number, Map<string, string>>;
    feedback: Map<number, string[]>;
    iceUfrag: string | undefined;
    icePwd: string | undefined;
    fingerprint: string | undefined;
    ridsSend: Set<string>;
    simulcastSend: string[];
  }
  const drafts: Draft[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] as string).trimEnd();
    if (line === '') continue;
    if (line.length < 2 || line[1] !== '=') {
      throw new MalformedInputError(FORMAT, i, `line ${i + 1} is not "<type>=<value>": "${line.slice(0, 40)}"`);
    }
    const type = line[0];
    const value = line.slice(2);
    const current = drafts[drafts.length - 1];
    if (type === 'm') {
      if (drafts.length >= MAX_MEDIA_SECTIONS) {
        throw new MalformedInputError(FORMAT, i, `more than ${MAX_MEDIA_SECTIONS} media sections`);
      }
      const m = /^(\w+) (\d+)(?:\/\d+)? (\S+)((?: \S+)*)$/.exec(value);
      if (m === null) throw new MalformedInputError(FORMAT, i, `malformed m= line "${value.slice(0, 60)}"`);
      const fmts = (m[4] ?? '').trim();
      const payloadTypes = fmts === '' ? [] : fmts.split(' ').map((f) => Number(f));
      const port = Number(m[2]);
      if (port > 65535) throw new MalformedInputError(FORMAT, i, `m= port ${port} out of range`);
      drafts.push({
        kind: m[1] as string,
        port,
        protocol: m[3] as string,
        // Non-RTP formats (webrtc-datachannel) are kept as NaN and never matched.
        payloadTypes: payloadTypes.filter((pt) => Number.isInteger(pt) && pt >= 0 && pt <= 127),
        mid: undefined,
        direction: undefined,
        rtpmap: new Map(),
        fmtp: new Map(),
        feedback: new Map(),
        iceUfrag: undefined,
        icePwd: undefined,
        fingerprint: undefined,
        ridsSend: new Set(),
        simulcastSend: [],
      });
      continue;
    }
    if (type !== 'a') continue;
    const colon = value.indexOf(':');
    const name = colon < 0 ? value : value.slice(0, colon);
    const arg = colon < 0 ? '' : value.slice(colon + 1);
    switch (name) {
      case 'ice-ufrag':
        if (current !== undefined) current.iceUfrag = arg;
        else session.iceUfrag = arg;
        break;
      case 'ice-pwd':
        if (current !== undefined) current.icePwd = arg;
        else session.icePwd = arg;
        break;
      case 'fingerprint':
        if (!/^[\w-]+ [0-9A-Fa-f:]+$/.test(arg)) {
          throw new MalformedInputError(FORMAT, i, `malformed fingerprint "${arg.slice(0, 60)}"`);
        }
        if (current !== undefined) current.fingerprint = arg;
        else sessionFingerprint = arg;
        break;
      case 'mid':
        if (current !== undefined) current.mid = arg;
        break;
      case 'sendrecv':
      case 'sendonly':
      case 'recvonly':
      case 'inactive':
        if (current !== undefined) current.direction = name;
        else sessionDirection = name;
        break;
      case 'rtpmap': {
        if (current === undefined) break;
        const r = /^(\d+) ([\w.-]+)\/(\d+)(?:\/(\d+))?$/.exec(arg);
        if (r === null) throw new MalformedInputError(FORMAT, i, `malformed rtpmap "${arg.slice(0, 60)}"`);
        const channels = r[4] !== undefined ? Number(r[4]) : undefined;
        current.rtpmap.set(Number(r[1]), { name: r[2] as string, clockRate: Number(r[3]), channels });
        break;
      }
      case 'fmtp': {
        if (current === undefined) break;
        const f = /^(\d+) (.*)$/.exec(arg);
        if (f === null) throw new MalformedInputError(FORMAT, i, `malformed fmtp "${arg.slice(0, 60)}"`);
        const params = new Map<string, string>();
        for (const part of (f[2] as string).split(';')) {
          const eq = part.indexOf('=');
          if (eq < 0) continue; // e.g. RED's "111/111"
          params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
        }
        current.fmtp.set(Number(f[1]), params);
        break;
      }
      case 'rtcp-fb': {
        if (current === undefined) break;
        const f = /^(\d+|\*) (.+)$/.exec(arg);
        if (f === null) throw new MalformedInputError(FORMAT, i, `malformed rtcp-fb "${arg.slice(0, 60)}"`);
        const pt = f[1] === '*' ? -1 : Number(f[1]);
        const list = current.feedback.get(pt) ?? [];
        if (list.length < 16) list.push(f[2] as string);
        current.feedback.set(pt, list);
        break;
      }
      case 'rid': {
        // RFC 8851 4: a=rid:<rid-id> <send|recv> [restrictions]
        if (current === undefined) break;
        const r = /^(\S+) (send|recv)(?: .*)?$/.exec(arg);
        if (r === null || !RID.test(r[1] as string)) {
          throw new MalformedInputError(
            FORMAT,
            i,
            `malformed a=rid "${arg.slice(0, 60)}" (rid-id: 1-16 letters, digits, - or _)`,
          );
        }
        if (r[2] === 'send') current.ridsSend.add(r[1] as string);
        break;
      }
      case 'simulcast': {
        // RFC 8853 5.1: a=simulcast:send 1;2,3;~4 [recv ...]: streams separated by ';', alternatives by ','.
        if (current === undefined) break;
        const words = arg.trim().split(/\s+/);
        const at = words.indexOf('send');
        const list = at >= 0 ? words[at + 1] : undefined;
        if (at >= 0 && list === undefined)
          throw new MalformedInputError(FORMAT, i, `a=simulcast "${arg.slice(0, 60)}" lists no stream after send`);
        if (list === undefined) break;
        const streams = list.split(';');
        if (streams.length > MAX_SIMULCAST_LAYERS) {
          throw new MalformedInputError(FORMAT, i, `a=simulcast sends ${streams.length} streams (limit ${MAX_SIMULCAST_LAYERS})`);
        }
        current.simulcastSend = streams.map((stream) => (stream.split(',')[0] ?? '').replace(/^~/, ''));
        break;
      }
      default:
        break;
    }
  }
  if (drafts.length === 0) throw new MalformedInputError(FORMAT, lines.length, 'no media section (m= line)');
  const media = drafts.map((d, index): OfferMedia => {
    const iceUfrag = d.iceUfrag ?? session.iceUfrag;
    const icePwd = d.icePwd ?? session.icePwd;
    const fingerprint = d.fingerprint ?? sessionFingerprint;
    if (d.port !== 0 && (iceUfrag === undefined || icePwd === undefined)) {
      throw new MalformedInputError(FORMAT, index, `media section ${index} (${d.kind}) has no a=ice-ufrag/a=ice-pwd`);
    }
    if (d.port !== 0 && fingerprint === undefined) {
      throw new MalformedInputError(FORMAT, index, `media section ${index} (${d.kind}) has no a=fingerprint (DTLS)`);
    }
    const undeclared = d.simulcastSend.find((rid) => !d.ridsSend.has(rid));
    if (undeclared !== undefined) {
      throw new MalformedInputError(
        FORMAT,
        index,
        `media section ${index} simulcasts rid "${undeclared.slice(0, 20)}" with no a=rid:${undeclared.slice(0, 20)} send line`,
      );
    }
    const codecs: OfferCodec[] = [];
    for (const pt of d.payloadTypes) {
      const map = d.rtpmap.get(pt);
      if (map === undefined) continue; // static types without rtpmap are not used by WebRTC peers
      codecs.push({
        payloadType: pt,
        name: map.name,
        clockRate: map.clockRate,
        channels: map.channels,
        fmtp: d.fmtp.get(pt) ?? new Map(),
        feedback: [...(d.feedback.get(-1) ?? []), ...(d.feedback.get(pt) ?? [])],
      });
    }
    return {
      kind: d.kind,
      port: d.port,
      protocol: d.protocol,
      payloadTypes: d.payloadTypes,
      mid: d.mid,
      direction: d.direction ?? sessionDirection,
      codecs,
      iceUfrag,
      icePwd,
      fingerprint,
      simulcastSend:
        new Set(d.simulcastSend).size === d.simulcastSend.length && d.simulcastSend.length > 1 ? d.simulcastSend : [],
    };
  });
  return { media };
}

/** The video codecs Feedcast sends (WHEP) and takes (WHIP) over WebRTC. */
export const WebRtcVideoCodecs = ['h264', 'vp8', 'vp9', 'av1', 'h265'] as const;
export type WebRtcVideoCodec = (typeof WebRtcVideoCodecs)[number];

export function isWebRtcVideoCodec(codec: string): codec is WebRtcVideoCodec {
  return (WebRtcVideoCodecs as readonly string[]).includes(codec);
}

/** H.264 profile_idc and constraint flags of an avcC (14496-15 5.3.3.1), for profile matching. */
export interface H264ProfileHint {
  readonly profileIdc: number;
  readonly constraintFlags: number;
}

/**
 * The offer's H.264 payload type Feedcast sends (WHEP) or accepts (WHIP): packetization-mode=1
 * (FU-A and STAP-A are needed for frames over one packet); among those the one whose profile matches
 * `hint`, else Constrained Baseline, else the first. undefined when the section has none.
 */
export function chooseH264(media: OfferMedia, hint?: H264ProfileHint): OfferCodec | undefined {
  const h264 = media.codecs.filter((c) => c.name.toLowerCase() === 'h264' && c.clockRate === 90_000);
  const mode1 = h264.filter((c) => c.fmtp.get('packetization-mode') === '1');
  if (mode1.length === 0) return undefined;
  const profileOf = (c: OfferCodec): number | undefined => {
    const pli = c.fmtp.get('profile-level-id');
    if (pli === undefined || !/^[0-9a-fA-F]{6}$/.test(pli)) return undefined;
    return parseInt(pli.slice(0, 2), 16);
  };
  if (hint !== undefined) {
    const same = mode1.find((c) => profileOf(c) === hint.profileIdc);
    if (same !== undefined) return same;
  }
  return mode1.find((c) => c.fmtp.get('profile-level-id')?.toLowerCase() === '42e01f') ?? mode1[0];
}

/** The offer's Opus payload type (48 kHz, 2 channels as RFC 7587 requires), or undefined. */
export function chooseOpus(media: OfferMedia): OfferCodec | undefined {
  return media.codecs.find((c) => c.name.toLowerCase() === 'opus' && c.clockRate === 48_000);
}

/** The offer's VP8 payload type, or undefined. */
export function chooseVp8(media: OfferMedia): OfferCodec | undefined {
  return media.codecs.find((c) => c.name.toLowerCase() === 'vp8' && c.clockRate === 90_000);
}

/** VP9 (RFC 9628), profile 0 (8-bit 4:2:0, what every browser decodes) when the offer says which. */
export function chooseVp9(media: OfferMedia): OfferCodec | undefined {
  const vp9 = media.codecs.filter((c) => c.name.toLowerCase() === 'vp9' && c.clockRate === 90_000);
  return vp9.find((c) => (c.fmtp.get('profile-id') ?? '0') === '0') ?? vp9[0];
}

/** H.265 (RFC 7798; offered by Safari and by Chromium where the platform decodes HEVC). */
export function chooseH265(media: OfferMedia): OfferCodec | undefined {
  return media.codecs.find((c) => c.name.toLowerCase() === 'h265' && c.clockRate === 90_000);
}

/** AV1 (the AOM RTP payload format), profile 0 when the offer says which. */
export function chooseAv1(media: OfferMedia): OfferCodec | undefined {
  const av1 = media.codecs.filter((c) => c.name.toLowerCase() === 'av1' && c.clockRate === 90_000);
  return av1.find((c) => (c.fmtp.get('profile') ?? '0') === '0') ?? av1[0];
}

/**
 * Rewrites the offer so that each media section offers only the payload type chosen for it
 * (`keep`: section index -> payload type; sections not in the map keep everything). werift then
 * answers with exactly that codec. Lines of the removed payload types (rtpmap, fmtp, rtcp-fb) go too,
 * and so do the restrictions of a=rid lines.
 */
export function trimOffer(text: string, keep: ReadonlyMap<number, number>): string {
  const lines = text.split(/\r?\n/);
  const out: string[] = [];
  let section = -1;
  for (const line of lines) {
    if (line.startsWith('m=')) {
      section++;
      const pt = keep.get(section);
      if (pt !== undefined) {
        const parts = line.split(' ');
        out.push([...parts.slice(0, 3), String(pt)].join(' '));
        continue;
      }
    } else if (section >= 0 && keep.has(section)) {
      const m = /^a=(rtpmap|fmtp|rtcp-fb):(\d+) /.exec(line);
      if (m !== null && Number(m[2]) !== keep.get(section)) continue;
      // A rid's restrictions (pt=, max-width= ...) may name removed payload types, and werift
      // reads everything after the rid as its direction: keep `a=rid:ID send|recv`.
      const rid = /^(a=rid:\S+ (?:send|recv)) /.exec(line);
      if (rid !== null) {
        out.push(rid[1] as string);
        continue;
      }
    }
    out.push(line);
  }
  return out.join('\r\n');
}

/**
 * Adds `name=value` to the fmtp of payload type `pt` in an SDP (an answer), making the line when
 * there is none. Used for `x-google-start-bitrate`, which Chromium reads from the remote description.
 */
export function addFmtpParameter(sdp: string, pt: number, name: string, value: string): string {
  const lines = sdp.split(/\r?\n/);
  const at = lines.findIndex((l) => l.startsWith(`a=fmtp:${pt} `));
  if (at >= 0) lines[at] = `${lines[at] as string};${name}=${value}`;
  else {
    const map = lines.findIndex((l) => l.startsWith(`a=rtpmap:${pt} `));
    if (map < 0) return sdp;
    lines.splice(map + 1, 0, `a=fmtp:${pt} ${name}=${value}`);
  }
  return lines.join('\r\n');
}
