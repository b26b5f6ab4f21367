// Media playlists (RFC 8216bis 4.4): the sliding window of a Segmenter, with LL-HLS parts,
// preload hint and server control (4.4.3.7-4.4.3.8, 4.4.4.9, 4.4.5.3), delta updates (6.2.5.1) and
// rendition reports (4.4.5.4); and the multivariant playlist of a ladder (4.4.6.2, 4.4.6.1).

import type { HlsSegment } from './segmenter.js';

export interface PlaylistUris {
  init(version: number): string;
  segment(msn: number): string;
  part(msn: number, index: number): string;
}

export interface PlaylistSource {
  readonly container: 'fmp4' | 'ts';
  readonly segments: readonly HlsSegment[];
  readonly mediaSequence: number;
  readonly discontinuitySequence: number;
  readonly targetDurationS: number;
  readonly partTargetS: number;
  /** PART-HOLD-BACK in part targets (default 3). */
  readonly partHoldBackParts?: number;
  readonly ended: boolean;
}

export interface PlaylistOptions {
  /** Advertise and list parts (LL-HLS). */
  lowLatency: boolean;
  /** The client asked for a delta update (_HLS_skip=YES). */
  skip: boolean;
  /** EXT-X-RENDITION-REPORT lines: the other renditions of the multivariant playlist (LL-HLS only). */
  renditionReports?: readonly RenditionReport[];
}

/** Where another rendition's live edge is (4.4.5.4): its last segment or part. */
export interface RenditionReport {
  /** Relative to the playlist carrying the report. */
  uri: string;
  lastMsn: number;
  /** Index of the last part of segment `lastMsn`; undefined when it has none listed. */
  lastPart: number | undefined;
}

/** The live edge of a window of segments, for a rendition report; undefined when it is empty. */
export function liveEdgeOf(segments: readonly HlsSegment[]): { lastMsn: number; lastPart: number | undefined } | undefined {
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i];
    if (s === undefined || (!s.complete && s.parts.length === 0)) continue;
    return { lastMsn: s.msn, lastPart: s.parts.length > 0 ? s.parts.length - 1 : undefined };
  }
  return undefined;
}

export function renditionReportLine(r: RenditionReport): string {
  return `#EXT-X-RENDITION-REPORT:URI="${r.uri}",LAST-MSN=${r.lastMsn}${r.lastPart !== undefined ? `,LAST-PART=${r.lastPart}` : ''}`;
}

/** One variant stream of a multivariant playlist (4.4.6.2). */
export interface VariantStreamInfo {
  uri: string;
  /** Peak segment bit rate, bit/s. */
  bandwidthBps: number;
  averageBandwidthBps: number | undefined;
  width: number | undefined;
  height: number | undefined;
  frameRate: number | undefined;
  /** RFC 6381, e.g. `avc1.64001e,mp4a.40.2`; undefined when not known yet. */
  codecs: string | undefined;
}

export function renderMultivariantPlaylist(variants: readonly VariantStreamInfo[]): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS'];
  for (const v of variants) {
    const attrs = [`BANDWIDTH=${Math.round(v.bandwidthBps)}`];
    if (v.averageBandwidthBps !== undefined) attrs.push(`AVERAGE-BANDWIDTH=${Math.round(v.averageBandwidthBps)}`);
    if (v.width !== undefined && v.height !== undefined && v.width > 0 && v.height > 0)
      attrs.push(`RESOLUTION=${v.width}x${v.height}`);
    if (v.frameRate !== undefined && v.frameRate > 0) attrs.push(`FRAME-RATE=${v.frameRate.toFixed(3)}`);
    if (v.codecs !== undefined) attrs.push(`CODECS="${v.codecs}"`);
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, v.uri);
  }
  return lines.join('\n') + '\n';
}

/** CAN-SKIP-UNTIL: the spec's minimum, six target durations. */
export function skipBoundaryS(targetDurationS: number): number {
  return 6 * targetDurationS;
}

/** PART-HOLD-BACK: `parts` part targets (the spec: at least 2, SHOULD be 3). */
export function partHoldBackS(partTargetS: number, parts = 3): number {
  return Math.max(2, parts) * partTargetS;
}

function seconds(duration90k: number): string {
  return (duration90k / 90_000).toFixed(5);
}

/** How many complete segments at the start of the window a delta update replaces by EXT-X-SKIP. */
export function skippableSegments(source: PlaylistSource): number {
  const boundary90k = skipBoundaryS(source.targetDurationS) * 90_000;
  let after = 0; // duration from the end of segment i to the end of the playlist
  for (const s of source.segments) after += s.duration90k;
  let count = 0;
  for (const s of source.segments) {
    after -= s.duration90k;
    if (!s.complete || after < boundary90k) break;
    count++;
  }
  return count;
}

export function renderPlaylist(source: PlaylistSource, uris: PlaylistUris, options: PlaylistOptions): string {
  const ll = options.lowLatency;
  const lines: string[] = ['#EXTM3U'];
  const skipped = ll && options.skip ? skippableSegments(source) : 0;
  lines.push(`#EXT-X-VERSION:${source.container === 'ts' ? 3 : skipped > 0 ? 9 : 7}`);
  lines.push(`#EXT-X-TARGETDURATION:${source.targetDurationS}`);
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${source.mediaSequence}`);
  if (source.discontinuitySequence > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${source.discontinuitySequence}`);
  if (ll) {
    lines.push(
      `#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=${skipBoundaryS(source.targetDurationS).toFixed(1)},PART-HOLD-BACK=${partHoldBackS(source.partTargetS, source.partHoldBackParts).toFixed(3)}`,
    );
    lines.push(`#EXT-X-PART-INF:PART-TARGET=${source.partTargetS.toFixed(3)}`);
  }
  if (source.container === 'fmp4') lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`);

  // Parts go once they are more than three target durations from the end (4.4.4.9): a segment's
  // parts are listed while the segment starts within them, and (as strict parsers read the rule)
  // for three segments at most, the open one included.
  const partsFrom90k = 3 * source.targetDurationS * 90_000;
  let startFromEnd90k = source.segments.reduce((n, s) => n + s.duration90k, 0);
  const partsFromIndex = source.segments.length - 3;
  let initShown: number | undefined;
  source.segments.forEach((s, i) => {
    const withParts = i >= partsFromIndex && startFromEnd90k <= partsFrom90k;
    startFromEnd90k -= s.duration90k;
    if (i < skipped) return;
    if (!s.complete && (!ll || s.parts.length === 0)) return;
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (source.container === 'fmp4' && s.initVersion !== initShown) {
      lines.push(`#EXT-X-MAP:URI="${uris.init(s.initVersion)}"`);
      initShown = s.initVersion;
    }
    lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(s.programDateMs).toISOString()}`);
    if (ll && (!s.complete || withParts)) {
      for (const p of s.parts) {
        lines.push(
          `#EXT-X-PART:DURATION=${seconds(p.duration90k)},URI="${uris.part(s.msn, p.index)}"${p.independent ? ',INDEPENDENT=YES' : ''}`,
        );
      }
    }
    if (s.complete) {
      lines.push(`#EXTINF:${seconds(s.duration90k)},`);
      lines.push(uris.segment(s.msn));
    }
  });
  if (source.ended) {
    lines.push('#EXT-X-ENDLIST');
  } else if (ll) {
    const open = source.segments[source.segments.length - 1];
    const hint = open !== undefined && !open.complete ? uris.part(open.msn, open.parts.length) : uris.part(nextMsn(source), 0);
    lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="${hint}"`);
  }
  if (ll) for (const r of options.renditionReports ?? []) lines.push(renditionReportLine(r));
  return lines.join('\n') + '\n';
}

function nextMsn(source: PlaylistSource): number {
  const last = source.segments[source.segments.length - 1];
  return last === undefined ? source.mediaSequence : last.msn + 1;
}
