// Feedcast player page: plays /watch/NAME over WebRTC (WHEP) first where the server offers it and
// the browser has RTCPeerConnection, falling back to LL-HLS; or with hls.js (LL-HLS or HLS)
// wherever MediaSource exists, native HLS where it does not (iPhone), or HTTP-FLV with mpegts.js.
// It shows how far behind live the picture is: for HLS the wall clock minus the
// EXT-X-PROGRAM-DATE-TIME of the playing frame; for WebRTC the wall clock minus the playout
// timestamp the browser derives from the server's RTCP sender reports. A timeline shows what the
// feed holds of its past (the recordings API); dragging back plays that time, within the live
// playlist's DVR window or as a VOD range (/FEED/index.m3u8?start=&end=); "Go live" returns.
/* global Hls, mpegts, RTCPeerConnection, MediaStream */
'use strict';

(function () {
  const cfg = window.FEEDCAST_WATCH;
  const video = document.getElementById('video');
  const select = document.getElementById('source');
  const stateEl = document.getElementById('state');
  const delayEl = document.getElementById('delay');
  const engineEl = document.getElementById('engine');
  const params = new URLSearchParams(location.search);
  const player = {
    engine: 'none',
    mode: '',
    error: '',
    fallback: '',
    playing: false,
    mediaChecked: false,
    hls: null,
    flv: null,
    native: false,
    pc: null,
    whepDelayMs: undefined,
    /** While the page plays a past range: the times asked for (ISO 8601 or any form the server reads). */
    vod: null,
  };
  window.feedcastPlayer = player;

  function setState(text, isError) {
    stateEl.textContent = text;
    stateEl.className = isError ? 'error' : 'state';
    if (isError) player.error = text;
  }

  /** Media plays: say so, keeping the reason of a fallback in view (it says what is playing instead). */
  function markPlaying() {
    if (player.error || player.playing) return;
    player.playing = true;
    setState(player.fallback || 'playing');
  }

  // Every engine ends in the <video> element: its clock moving is the one sign of playback they share
  // (mpegts.js, for one, has no "playing" event of its own).
  let lastTime = 0;
  video.addEventListener('timeupdate', function () {
    if (video.currentTime > lastTime && lastTime > 0) markPlaying();
    lastTime = video.currentTime;
  });

  function stop() {
    if (player.pc) {
      const pc = player.pc;
      player.pc = null;
      pc.close();
      if (player.whepLocation) fetch(player.whepLocation, { method: 'DELETE' }).catch(function () {});
      player.whepLocation = null;
      video.srcObject = null;
    }
    player.whepDelayMs = undefined;
    if (player.hls) player.hls.destroy();
    if (player.flv) {
      player.flv.destroy();
    }
    player.hls = null;
    player.flv = null;
    player.native = false;
    video.removeAttribute('src');
    video.load();
  }

  function playHls(url, lowLatency) {
    if (window.Hls && Hls.isSupported()) {
      // Live sync: behind its target latency (after a publisher reconnect, a stall), hls.js plays up
      // to 1.5x faster until it is back at the target (for LL-HLS, the playlist's PART-HOLD-BACK).
      const hls = new Hls({
        lowLatencyMode: lowLatency,
        liveDurationInfinity: true,
        backBufferLength: 10,
        maxLiveSyncPlaybackRate: 1.5,
      });
      player.hls = hls;
      player.engine = 'hls.js ' + Hls.version;
      hls.on(Hls.Events.ERROR, function (_e, data) {
        if (!data.fatal) return;
        const code = data.response ? data.response.code : 0;
        if (data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR && code >= 400 && code < 500) {
          // The server said why it cannot serve this playlist (a codec HLS does not carry, no such
          // feed, a token needed): show that, and try HLS with MPEG-TS segments where it can help.
          const xhr = data.networkDetails;
          const why = (xhr && typeof xhr.responseText === 'string' && xhr.responseText.trim()) || 'HTTP ' + code;
          hls.destroy();
          if (player.hls === hls) player.hls = null;
          if (code === 406 && player.mode !== 'ts' && cfg.hlsTs) {
            start('ts', (player.mode === 'll' ? 'LL-HLS' : 'HLS') + ': ' + why + ' Playing HLS (MPEG-TS) instead.');
          } else {
            setState(why, true);
          }
          return;
        }
        setState('error: ' + data.details + ', retrying', true);
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
        else
          setTimeout(function () {
            hls.startLoad();
          }, 1000);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      // Safari on iPhone: no MediaSource, but HLS (and LL-HLS) is built in.
      player.native = true;
      player.engine = 'native HLS';
      video.src = url;
    } else {
      setState('This browser can play neither HLS nor MediaSource video.', true);
    }
  }

  function playFlv(url) {
    if (!window.mpegts || !mpegts.isSupported() || !mpegts.getFeatureList().mseLivePlayback) {
      setState('HTTP-FLV needs MediaSource, which this browser lacks: choose HLS.', true);
      return;
    }
    const p = mpegts.createPlayer(
      { type: 'flv', isLive: true, url: new URL(url, location.href).href },
      {
        enableStashBuffer: false,
        liveBufferLatencyChasing: true,
        liveBufferLatencyMaxLatency: 1.5,
        liveBufferLatencyMinRemain: 0.3,
      },
    );
    player.flv = p;
    player.engine = 'mpegts.js';
    p.on(mpegts.Events.ERROR, function (type, detail) {
      setState('error: ' + type + ' ' + detail, true);
    });
    p.attachMediaElement(video);
    p.load();
    const started = p.play();
    if (started && started.catch) started.catch(function () {});
  }

  /** WHEP: recvonly offer with all candidates, POST, answer; falls back to LL-HLS when it fails. */
  function playWebRtc(url) {
    if (!window.RTCPeerConnection) {
      fallBack('this browser has no WebRTC');
      return;
    }
    const pc = new RTCPeerConnection();
    player.pc = pc;
    player.engine = 'WebRTC (WHEP)';
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const stream = new MediaStream();
    video.srcObject = stream;
    pc.ontrack = function (e) {
      stream.addTrack(e.track);
      // Load the stream again with its new track: an element that loaded it empty never starts on a
      // late audio track alone (readyState stays 0), which left audio-only feeds silent.
      video.srcObject = stream;
      const p = video.play();
      if (p && p.catch) p.catch(function () {});
    };
    pc.onconnectionstatechange = function () {
      if (player.pc !== pc) return;
      if (pc.connectionState === 'failed') fallBack('the WebRTC connection failed');
    };
    const gathered = new Promise(function (resolve) {
      pc.onicegatheringstatechange = function () {
        if (pc.iceGatheringState === 'complete') resolve();
      };
      setTimeout(resolve, 2000);
    });
    pc.createOffer()
      .then(function (offer) {
        return pc.setLocalDescription(offer);
      })
      .then(function () {
        return gathered;
      })
      .then(function () {
        return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
      })
      .then(function (res) {
        return res.text().then(function (text) {
          if (res.status !== 201) throw new Error(text.trim() || 'HTTP ' + res.status);
          player.whepLocation = res.headers.get('Location');
          const note = res.headers.get('X-Feedcast-Note');
          if (note) engineEl.title = note;
          return pc.setRemoteDescription({ type: 'answer', sdp: text }).then(function () {
            // The clock starts with the answer: a busy server's slow answer says nothing about the path.
            setTimeout(function () {
              check(6, false);
            }, 6000);
          });
        });
      })
      .catch(function (err) {
        if (player.pc === pc) fallBack(err.message);
      });
    // The network path is blocked (UDP filtered) when ICE has found no working pair 6 s after the
    // answer: HLS goes over HTTP. A path that works (checks answered, or connected) but brings no
    // media yet (DTLS or an audio transcoder starting on a busy server) gets until 15 s.
    function check(limitS, last) {
      if (player.pc !== pc) return;
      mediaArrived(pc).then(function (arrived) {
        if (player.pc !== pc) return;
        const pathWorks = pc.connectionState === 'connected' || ['connected', 'completed'].indexOf(pc.iceConnectionState) >= 0;
        if (arrived) player.mediaChecked = true;
        else if (!pathWorks) fallBack('no WebRTC connection within ' + limitS + ' s');
        else if (last) fallBack('connected, but no WebRTC media within ' + limitS + ' s');
        else
          setTimeout(function () {
            check(15, true);
          }, 9000);
      });
    }
  }

  /** Whether video frames were decoded or audio packets received: an audio-only feed has no frames to count. */
  function mediaArrived(pc) {
    if (video.getVideoPlaybackQuality && video.getVideoPlaybackQuality().totalVideoFrames > 0) return Promise.resolve(true);
    return pc.getStats().then(function (stats) {
      let arrived = false;
      stats.forEach(function (s) {
        if (s.type === 'inbound-rtp' && (s.framesDecoded > 0 || (s.kind === 'audio' && s.packetsReceived > 0))) arrived = true;
      });
      return arrived;
    });
  }

  function fallBack(why) {
    if (player.mode !== 'webrtc') return;
    start('ll', 'WebRTC: ' + why + '; playing LL-HLS instead');
  }

  /**
   * WebRTC delay: wall clock minus the playout timestamp (RTCP SR mapping) where the browser
   * reports one; else an estimate from the browser's own figures: half the round trip plus the
   * time frames spend in the jitter buffer and decoder (totalProcessingDelay per decoded frame).
   */
  function sampleWebRtcDelay() {
    const pc = player.pc;
    if (!pc) return;
    pc.getStats().then(function (stats) {
      let rttMs = 0;
      stats.forEach(function (s) {
        if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime) rttMs = s.currentRoundTripTime * 1000;
      });
      stats.forEach(function (s) {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') return;
        if (s.estimatedPlayoutTimestamp) {
          // NTP epoch (1900) in ms -> Unix epoch.
          player.whepDelayMs = Date.now() - (s.estimatedPlayoutTimestamp - 2208988800000);
          player.whepDelaySource = 'clock';
        } else if (s.framesDecoded > 0 && s.totalProcessingDelay !== undefined) {
          player.whepDelayMs = rttMs / 2 + (s.totalProcessingDelay / s.framesDecoded) * 1000;
          player.whepDelaySource = 'estimate';
        }
      });
    });
  }

  /** Plays `mode`; `fallback` says why this mode replaces the one asked for (shown until an error). */
  function start(mode, fallback) {
    stop();
    player.vod = null;
    player.mode = mode;
    player.error = '';
    player.playing = false;
    player.mediaChecked = false;
    player.fallback = fallback || '';
    lastTime = 0;
    setState(fallback || 'loading…');
    if (mode === 'webrtc' && cfg.whep) playWebRtc(cfg.whep);
    else if (mode === 'flv' && cfg.flv) playFlv(cfg.flv);
    else if (mode === 'ts' && cfg.hlsTs) playHls(cfg.hlsTs, false);
    else playHls(cfg.hls, mode !== 'hls');
    engineEl.textContent = player.engine;
    if (
      select.value !== mode &&
      [].some.call(select.options, function (o) {
        return o.value === mode;
      })
    )
      select.value = mode;
    const p = video.play();
    if (p && p.catch) p.catch(function () {});
  }

  /** Plays a past range of the feed as an HLS VOD playlist (`end` undefined: up to now). */
  function playVod(startText, endText) {
    stop();
    const url = new URL(cfg.hls, location.href);
    url.searchParams.set('start', startText);
    if (endText) url.searchParams.set('end', endText);
    player.vod = { start: startText, end: endText || null };
    player.mode = 'vod';
    player.error = '';
    player.playing = false;
    player.fallback = '';
    lastTime = 0;
    setState('loading the past…');
    playHls(url.pathname + url.search, false);
    engineEl.textContent = player.engine;
    const p = video.play();
    if (p && p.catch) p.catch(function () {});
  }

  /** Wall-clock time (ms) of the picture shown, from the playlist's EXT-X-PROGRAM-DATE-TIME; undefined if unknown. */
  function playingWallMs() {
    if (player.hls && player.hls.playingDate) return player.hls.playingDate.getTime();
    return undefined;
  }

  /**
   * Plays from wall-clock time `ms`: a seek within the live playlist when its (DVR) window holds it,
   * else the past as a VOD range up to now; near now, live.
   */
  player.seekTo = function (ms) {
    if (Date.now() - ms < 3000) {
      player.goLive();
      return;
    }
    const wall = playingWallMs();
    if (!player.vod && player.hls && wall !== undefined && video.seekable.length > 0) {
      const at = video.currentTime + (ms - wall) / 1000;
      if (at >= video.seekable.start(0) && at <= video.seekable.end(0)) {
        video.currentTime = at;
        return;
      }
    }
    playVod(new Date(ms).toISOString());
  };

  /** Back to the live edge (from a VOD range: the live source again). */
  player.goLive = function () {
    if (player.vod) {
      start(select.value);
      return;
    }
    if (player.hls && player.hls.liveSyncPosition) video.currentTime = player.hls.liveSyncPosition;
    else if (video.buffered.length > 0) video.currentTime = Math.max(0, video.buffered.end(video.buffered.length - 1) - 0.5);
  };

  // The timeline: the spans the feed holds (recordings and feed file) and the live playlist's window.
  const timeline = document.getElementById('timeline');
  const heldEl = document.getElementById('held');
  const seek = document.getElementById('seek');
  const atEl = document.getElementById('at');
  let spans = [];
  let dragging = false;
  function timelineRange() {
    let from = spans.length > 0 ? spans[0].startMs : Infinity;
    const wall = playingWallMs();
    if (!player.vod && wall !== undefined && video.seekable.length > 0) {
      from = Math.min(from, wall - (video.currentTime - video.seekable.start(0)) * 1000);
    }
    return isFinite(from) ? { from: from, to: Date.now() } : undefined;
  }
  function drawTimeline() {
    const range = timelineRange();
    timeline.hidden = range === undefined || range.to - range.from < 5000;
    if (timeline.hidden) return;
    seek.min = String(Math.floor(range.from));
    seek.max = String(Math.ceil(range.to));
    const width = range.to - range.from;
    heldEl.textContent = '';
    spans.forEach(function (sp) {
      const el = document.createElement('span');
      el.style.left = (Math.max(0, sp.startMs - range.from) / width) * 100 + '%';
      el.style.width = (Math.max(0, Math.min(range.to, sp.endMs) - Math.max(range.from, sp.startMs)) / width) * 100 + '%';
      heldEl.appendChild(el);
    });
    const wall = playingWallMs();
    if (!dragging && wall !== undefined) seek.value = String(wall);
    atEl.textContent =
      wall !== undefined ? new Date(wall).toISOString().slice(11, 19) + ' UTC' + (player.vod ? ' (past)' : '') : '';
  }
  function loadSpans() {
    if (!cfg.recordings) return;
    fetch(cfg.recordings)
      .then(function (res) {
        return res.ok ? res.json() : null;
      })
      .then(function (listing) {
        if (listing && Array.isArray(listing.spans)) spans = listing.spans;
        drawTimeline();
      })
      .catch(function () {});
  }
  seek.addEventListener('input', function () {
    dragging = true;
    atEl.textContent = new Date(Number(seek.value)).toISOString().slice(11, 19) + ' UTC?';
  });
  seek.addEventListener('change', function () {
    dragging = false;
    player.seekTo(Number(seek.value));
  });
  loadSpans();
  setInterval(loadSpans, 10000);
  setInterval(drawTimeline, 1000);

  /** How far the shown picture is behind live, in ms, or undefined. */
  player.delayMs = function () {
    if (player.pc) return player.whepDelayMs;
    if (player.hls && player.hls.playingDate) return Date.now() - player.hls.playingDate.getTime();
    if (player.native && typeof video.getStartDate === 'function') {
      const start = video.getStartDate().getTime();
      if (!isNaN(start)) return Date.now() - (start + video.currentTime * 1000);
    }
    if (video.buffered.length > 0) return (video.buffered.end(video.buffered.length - 1) - video.currentTime) * 1000;
    return undefined;
  };

  setInterval(function () {
    sampleWebRtcDelay();
    const d = player.delayMs();
    const fromClock = player.hls !== null || player.native || (player.pc !== null && player.whepDelaySource === 'clock');
    const label = fromClock ? '' : player.pc !== null ? ' (estimate)' : ' (buffer)';
    delayEl.textContent = d === undefined ? '—' : (d / 1000).toFixed(2) + ' s' + label;
  }, 500);

  // Leaving the page ends the WHEP session at once (the server would otherwise wait for its timeout).
  window.addEventListener('pagehide', stop);

  document.getElementById('live').addEventListener('click', function () {
    player.goLive();
  });
  select.addEventListener('change', function () {
    const url = new URL(location.href);
    url.searchParams.set('src', select.value);
    history.replaceState(null, '', url);
    start(select.value);
  });

  const initial = params.get('src') || (cfg.whep && window.RTCPeerConnection ? 'webrtc' : 'll');
  if (
    [].some.call(select.options, function (o) {
      return o.value === initial;
    })
  )
    select.value = initial;
  // /watch/NAME?start=T&end=T2 (the recordings page's "Play" links): that range first.
  if (params.get('start')) playVod(params.get('start'), params.get('end'));
  else start(select.value);
})();
