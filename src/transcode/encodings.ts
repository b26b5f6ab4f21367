// The encodings a feed's streams need (ffserver's publish handshake, ref §3.2) as variants: the
// distinct MPEG-TS-carriable encoding profiles of the feed's FLV/TS streams, in config order.
// A publisher (`feedcast publish`) or the server-side ladder encodes them all into one
// multi-track feed; variant k is the k-th video and k-th audio track of that feed.

import type { ServerConfig, StreamConfig } from '../config/config.js';
import { feedKeyOf } from '../feed/feed-manager.js';
import type { Track } from '../media/track.js';
import { needsEncoding, profileOf, type TranscodeProfile } from './ffmpeg-args.js';

export interface Variant {
  readonly index: number;
  readonly profile: TranscodeProfile;
  /** Declared streams served from this variant. */
  readonly streams: readonly string[];
  /** Position among the variants that have video / audio (undefined: the variant has none). */
  readonly videoIndex: number | undefined;
  readonly audioIndex: number | undefined;
}

/** Streams of a feed that need encoding, with their profiles. */
export function encodedStreams(config: ServerConfig, feedKey: string): { stream: StreamConfig; profile: TranscodeProfile }[] {
  return config.streams
    .filter((s) => s.feed !== undefined && feedKeyOf(s.feed) === feedKey && needsEncoding(s))
    .map((stream) => ({ stream, profile: profileOf(stream) }));
}

/** Whether every track of a profile can travel in a published MPEG-TS (and so be a variant). */
function carriable(profile: TranscodeProfile): boolean {
  if (profile.output !== 'feed') return false;
  if (profile.video !== undefined && profile.video.codec === undefined) return false;
  if (profile.audio !== undefined && profile.audio.codec === undefined) return false;
  return profile.video !== undefined || profile.audio !== undefined;
}

export function variantsOf(config: ServerConfig, feedKey: string): Variant[] {
  const byKey = new Map<string, { profile: TranscodeProfile; streams: string[] }>();
  for (const { stream, profile } of encodedStreams(config, feedKey)) {
    if (!carriable(profile)) continue;
    const entry = byKey.get(profile.key);
    if (entry !== undefined) entry.streams.push(stream.name);
    else byKey.set(profile.key, { profile, streams: [stream.name] });
  }
  let v = 0;
  let a = 0;
  return [...byKey.values()].map((e, index) => ({
    index,
    profile: e.profile,
    streams: e.streams,
    videoIndex: e.profile.video !== undefined ? v++ : undefined,
    audioIndex: e.profile.audio !== undefined ? a++ : undefined,
  }));
}

export interface VariantTracks {
  video: Track | undefined;
  audio: Track | undefined;
}

/**
 * The tracks of `variant` in a feed that carries the variants (published by `feedcast publish`
 * or made by the ladder), or undefined when the feed's tracks do not have that layout (then the
 * server transcodes). Checks counts, codecs and picture sizes.
 */
export function tracksOfVariant(
  tracks: readonly Track[],
  variants: readonly Variant[],
  variant: Variant,
): VariantTracks | undefined {
  const videos = tracks.filter((t) => t.kind === 'video').sort((x, y) => x.id - y.id);
  const audios = tracks.filter((t) => t.kind === 'audio').sort((x, y) => x.id - y.id);
  const wantVideos = variants.filter((v) => v.videoIndex !== undefined).length;
  const wantAudios = variants.filter((v) => v.audioIndex !== undefined).length;
  if (videos.length !== wantVideos || (audios.length !== wantAudios && audios.length !== 0)) return undefined;
  const video = variant.videoIndex !== undefined ? videos[variant.videoIndex] : undefined;
  const audio = variant.audioIndex !== undefined ? audios[variant.audioIndex] : undefined;
  const spec = variant.profile.video;
  if (spec !== undefined) {
    if (video === undefined || video.codec !== spec.codec) return undefined;
    if (video.width !== undefined && (video.width !== spec.width || video.height !== spec.height)) return undefined;
  }
  const aspec = variant.profile.audio;
  if (aspec !== undefined && audio !== undefined && audio.codec !== aspec.codec) return undefined;
  return { video, audio };
}

/** The JSON a publisher fetches (`GET /feed1.ffm?config`, `/api/v1/feeds/feed1/encodings`). */
export function encodingsDocument(config: ServerConfig, feedKey: string): object {
  const variants = variantsOf(config, feedKey);
  const serverSide = encodedStreams(config, feedKey)
    .filter(({ profile }) => !variants.some((v) => v.profile.key === profile.key))
    .map(({ stream }) => ({
      stream: stream.name,
      format: stream.format.name,
      reason: 'encoded by the server (not carried in MPEG-TS)',
    }));
  return {
    feed: feedKey,
    version: 1,
    trackOrder: 'video tracks in variant order, then audio tracks in variant order',
    container: 'mpegts',
    keyframeIntervalSeconds: 2,
    variants: variants.map((v) => ({
      index: v.index,
      streams: v.streams,
      ...(v.profile.video !== undefined
        ? {
            video: {
              encoder: v.profile.video.encoder,
              codec: v.profile.video.codec,
              width: v.profile.video.width,
              height: v.profile.video.height,
              frameRate: v.profile.video.frameRate,
              bitRateKbps: v.profile.video.bitRateKbps ?? null,
              gop: v.profile.video.gop,
              options: v.profile.video.options,
            },
          }
        : {}),
      ...(v.profile.audio !== undefined
        ? {
            audio: {
              encoder: v.profile.audio.encoder,
              codec: v.profile.audio.codec,
              bitRateKbps: v.profile.audio.bitRateKbps ?? null,
              sampleRate: v.profile.audio.sampleRate ?? null,
              channels: v.profile.audio.channels ?? null,
              options: v.profile.audio.options,
            },
          }
        : {}),
    })),
    serverSide,
  };
}
