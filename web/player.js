// Feedcast player page: plays /watch/NAME with hls.js (LL-HLS or HLS) wherever MediaSource
// exists, native HLS where it does not (iPhone), or HTTP-FLV with mpegts.js, and shows how far
// behind live the picture is (wall clock minus the EXT-X-PROGRAM-DATE-TIME of the playing frame).
/* global Hls, mpegts */
'use strict';

(function () {
  const cfg = window.FEEDCAST_WATCH;
  const video = document.getElementById('video');
  const select = document.getElementById('source');
  const stateEl = document.getElementById('state');
  const delayEl = document.getElementById('delay');
  const engineEl = document.getElementById('engine');
  const params = new URLSearchParams(location.search);
  const player = { engine: 'none', mode: '', error: '', hls: null, flv: null, native: false };
  window.feedcastPlayer = player;

  function setState(text, isError) {
    stateEl.textContent = text;
    stateEl.className = isError ? 'error' : 'state';
    if (isError) player.error = text;
  }

  function stop() {
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
      const hls = new Hls({ lowLatencyMode: lowLatency, liveDurationInfinity: true, backBufferLength: 10 });
      player.hls = hls;
      player.engine = 'hls.js ' + Hls.version;
      hls.on(Hls.Events.ERROR, function (_e, data) {
        if (!data.fatal) return;
        setState('error: ' + data.details + ', retrying', true);
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
        else
          setTimeout(function () {
            hls.startLoad();
          }, 1000);
      });
      hls.on(Hls.Events.FRAG_BUFFERED, function () {
        if (!player.error) setState('playing');
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

  function start(mode) {
    stop();
    player.mode = mode;
    player.error = '';
    setState('loading…');
    if (mode === 'flv' && cfg.flv) playFlv(cfg.flv);
    else if (mode === 'ts' && cfg.hlsTs) playHls(cfg.hlsTs, false);
    else playHls(cfg.hls, mode !== 'hls');
    engineEl.textContent = player.engine;
    const p = video.play();
    if (p && p.catch) p.catch(function () {});
  }

  /** How far the shown picture is behind live, in ms, or undefined. */
  player.delayMs = function () {
    if (player.hls && player.hls.playingDate) return Date.now() - player.hls.playingDate.getTime();
    if (player.native && typeof video.getStartDate === 'function') {
      const start = video.getStartDate().getTime();
      if (!isNaN(start)) return Date.now() - (start + video.currentTime * 1000);
    }
    if (video.buffered.length > 0) return (video.buffered.end(video.buffered.length - 1) - video.currentTime) * 1000;
    return undefined;
  };

  setInterval(function () {
    const d = player.delayMs();
    const fromClock = player.hls !== null || player.native;
    delayEl.textContent = d === undefined ? '—' : (d / 1000).toFixed(2) + ' s' + (fromClock ? '' : ' (buffer)');
  }, 500);

  document.getElementById('live').addEventListener('click', function () {
    if (player.hls && player.hls.liveSyncPosition) video.currentTime = player.hls.liveSyncPosition;
    else if (video.buffered.length > 0) video.currentTime = Math.max(0, video.buffered.end(video.buffered.length - 1) - 0.5);
  });
  select.addEventListener('change', function () {
    const url = new URL(location.href);
    url.searchParams.set('src', select.value);
    history.replaceState(null, '', url);
    start(select.value);
  });

  const initial = params.get('src') || 'll';
  if (
    [].some.call(select.options, function (o) {
      return o.value === initial;
    })
  )
    select.value = initial;
  start(select.value);
})();
