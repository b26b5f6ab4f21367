// Plain-object views of the running server (feeds, streams, outputs, connections), shared by
// the JSON API, the status page and the metrics so the three always agree.

import type { ConnectionInfo, WebRtcViewerView } from '../access/connections.js';
import type { Feed } from '../feed/feed.js';
import { isoTime } from '../feedfile/time-spec.js';
import type { Track } from '../media/track.js';
import { listRecordings, type RecordingsListing } from '../record/listing.js';
import type { ControlContext } from './control-context.js';
import type { MuxedOutput } from '../streams/muxed-output.js';

export interface TrackView {
  id: number;
  kind: string;
  codec: string;
  width?: number;
  height?: number;
  sampleRate?: number;
  channels?: number;
  profile?: string;
}

export interface FeedView {
  name: string;
  key: string;
  declared: boolean;
  urls: { publish: string; flv: string; ts: string };
  publisher: { protocol: string; remoteAddress: string; startedAt: string; uptimeSeconds: number } | null;
  /** The offline slate is what readers get now (OfflineSlate, while the feed waits for its publisher). */
  showingSlate: boolean;
  tracks: TrackView[];
  inputKbps: number;
  keyframeIntervalSeconds: number | null;
  framesIn: number;
  bytesIn: number;
  keyframesIn: number;
  publishers: number;
  framesSkippedBeforeKeyframe: number;
  /** Frames dropped at ingest for being over a per-frame cap (FC_ERR_FRAME_TOO_LARGE). */
  framesTooLarge: number;
  timestampRepairs: { nonMonotonic: number; jumps: number };
  readers: number;
  /** The feed's disk ring (FeedFile), null without `File`. */
  file: {
    path: string;
    sizeBytes: number;
    maxSizeBytes: number;
    oldest: string | null;
    newest: string | null;
    durationSeconds: number;
    writeKbps: number;
    framesDropped: number;
    writeErrors: number;
    lastError: string | null;
  } | null;
  /** The feed's recording (`Record on`), null when it is not recorded. */
  recording: RecordingView | null;
}

/** A feed's recording as the API and the status page show it. */
export interface RecordingView {
  /** 'recording', 'waiting' (for a publisher or a keyframe), 'failed' (stopped by an error, retried), 'closed'. */
  state: string;
  format: 'fmp4' | 'ts';
  currentPath: string | null;
  bytesWritten: number;
  filesStarted: number;
  files: number;
  bytesHeld: number;
  retentionDeletedFiles: number;
  retentionDeletedBytes: number;
  writeErrors: number;
  framesDropped: number;
  lastError: string | null;
}

export interface OutputView {
  id: string;
  feed: string;
  contentType: string | null;
  readers: number;
  bytesServed: number;
  chunksDropped: number;
  skips: number;
}

export interface ConnectionView {
  id: number;
  protocol: string;
  remoteAddress: string;
  /** The TrustedProxy the request came through, or null. */
  proxyAddress: string | null;
  role: string;
  target: string;
  state: string;
  openedAt: string;
  seconds: number;
  bytesIn: number;
  bytesOut: number;
  targetKbps: number;
  actualKbps: number;
  chunksDropped: number;
  /** SRT connections: libsrt's totals (lost: received for a publisher, sent for a reader). */
  srt?: SrtConnectionView;
  /**
   * WebRTC sessions: inbound SRTP and SRTCP packets dropped because they failed authentication or
   * replay checks; WHEP viewers: the simulcast layer sent, the browser's bandwidth estimate, what the
   * layers measure.
   */
  webrtc?: Partial<WebRtcViewerView> & { srtpRejected?: number; srtcpRejected?: number };
}

export interface SrtConnectionView {
  packetsLost: number;
  packetsRetransmitted: number;
  packetsDropped: number;
  rttMs: number;
  encrypted: boolean;
}

function trackView(t: Track): TrackView {
  const v: TrackView = { id: t.id, kind: t.kind, codec: t.codec };
  if (t.width !== undefined) v.width = t.width;
  if (t.height !== undefined) v.height = t.height;
  if (t.sampleRate !== undefined) v.sampleRate = t.sampleRate;
  if (t.channels !== undefined) v.channels = t.channels;
  if (t.profile !== undefined) v.profile = t.profile;
  return v;
}

export function feedView(ctx: ControlContext, feed: Feed, now = Date.now()): FeedView {
  const pub = feed.publisher;
  const readers = ctx.outputs
    .all()
    .filter((o) => o.feed === feed)
    .reduce((sum, o) => sum + o.readers, 0);
  const interval = feed.keyframeInterval90k;
  return {
    name: feed.name,
    key: feed.key,
    declared: ctx.config.feeds.some((f) => f.key === feed.key),
    urls: { publish: `/${feed.name}`, flv: `/${feed.key}.flv`, ts: `/${feed.key}.ts` },
    publisher:
      pub !== undefined
        ? {
            protocol: pub.protocol,
            remoteAddress: pub.remoteAddress,
            startedAt: pub.startedAt.toISOString(),
            uptimeSeconds: Math.round((now - pub.startedAt.getTime()) / 1000),
          }
        : null,
    showingSlate: feed.standIn !== undefined,
    tracks: feed.tracks.map(trackView),
    inputKbps: Math.round(feed.inputRate.bitsPerSecond(now) / 1000),
    keyframeIntervalSeconds: interval === undefined ? null : Math.round((interval / 90_000) * 100) / 100,
    framesIn: feed.stats.framesIn,
    bytesIn: feed.stats.bytesIn,
    keyframesIn: feed.stats.keyframesIn,
    publishers: feed.stats.publishers,
    framesSkippedBeforeKeyframe: feed.stats.framesSkippedBeforeKeyframe,
    framesTooLarge: feed.stats.framesTooLarge,
    timestampRepairs: { ...feed.clockRepairs },
    readers,
    file: fileView(ctx, feed),
    recording: recordingView(ctx, feed),
  };
}

function recordingView(ctx: ControlContext, feed: Feed): RecordingView | null {
  const r = ctx.recordings.of(feed.key);
  if (r === undefined) return null;
  const s = r.status;
  return {
    state: s.state,
    format: s.format,
    currentPath: s.currentPath ?? null,
    bytesWritten: s.bytesWritten,
    filesStarted: s.filesStarted,
    files: s.files,
    bytesHeld: s.bytesHeld,
    retentionDeletedFiles: s.retentionDeletedFiles,
    retentionDeletedBytes: s.retentionDeletedBytes,
    writeErrors: s.writeErrors,
    framesDropped: s.framesDropped,
    lastError: s.lastError ?? null,
  };
}

/** What a feed holds of its past: its recordings and its FeedFile ring (GET /api/v1/recordings/FEED). */
export function recordingsListing(ctx: ControlContext, feed: Feed): RecordingsListing {
  const file = ctx.feedFiles.of(feed)?.status;
  const ring =
    file?.oldestWallMs !== undefined && file.newestWallMs !== undefined
      ? { oldestWallMs: file.oldestWallMs, newestWallMs: file.newestWallMs, bytes: file.sizeBytes }
      : undefined;
  return listRecordings(feed.key, ctx.recordings.of(feed.key), ring);
}

function fileView(ctx: ControlContext, feed: Feed): FeedView['file'] {
  const status = ctx.feedFiles.of(feed)?.status;
  if (status === undefined) return null;
  const iso = (ms: number | undefined): string | null => (ms === undefined ? null : isoTime(ms));
  return {
    path: status.path,
    sizeBytes: status.sizeBytes,
    maxSizeBytes: status.maxSizeBytes,
    oldest: iso(status.oldestWallMs),
    newest: iso(status.newestWallMs),
    durationSeconds: Math.round(status.durationSeconds),
    writeKbps: Math.round(status.writeBitsPerSecond / 1000),
    framesDropped: status.framesDropped,
    writeErrors: status.writeErrors,
    lastError: status.lastError ?? null,
  };
}

export function outputView(o: MuxedOutput): OutputView {
  return {
    id: o.id,
    feed: o.feed.key,
    contentType: o.contentType ?? null,
    readers: o.readers,
    bytesServed: o.bytesServed,
    chunksDropped: o.chunksDropped,
    skips: o.readerSkips,
  };
}

export function connectionView(c: ConnectionInfo, now = Date.now()): ConnectionView {
  return {
    id: c.id,
    protocol: c.protocol,
    remoteAddress: c.remoteAddress,
    proxyAddress: c.proxyAddress ?? null,
    role: c.role,
    target: c.target,
    state: c.state,
    openedAt: new Date(c.openedAt).toISOString(),
    seconds: Math.round((now - c.openedAt) / 1000),
    bytesIn: c.bytesIn,
    bytesOut: c.bytesOut,
    targetKbps: Math.round(c.targetKbps),
    actualKbps: Math.round(c.counters['actualKbps'] ?? 0),
    chunksDropped: c.counters['chunksDropped'] ?? 0,
    ...(c.counters['srtRttMs'] !== undefined
      ? {
          srt: {
            packetsLost: c.counters['srtPacketsLost'] ?? 0,
            packetsRetransmitted: c.counters['srtPacketsRetransmitted'] ?? 0,
            packetsDropped: c.counters['srtPacketsDropped'] ?? 0,
            rttMs: Math.round((c.counters['srtRttMs'] ?? 0) * 10) / 10,
            encrypted: c.counters['srtEncrypted'] === 1,
          },
        }
      : {}),
    ...(c.counters['srtpRejected'] !== undefined || c.webrtc !== undefined
      ? {
          webrtc: {
            ...(c.counters['srtpRejected'] !== undefined
              ? { srtpRejected: c.counters['srtpRejected'], srtcpRejected: c.counters['srtcpRejected'] ?? 0 }
              : {}),
            ...(c.webrtc !== undefined ? { ...c.webrtc, layerKbps: { ...c.webrtc.layerKbps } } : {}),
          },
        }
      : {}),
  };
}
