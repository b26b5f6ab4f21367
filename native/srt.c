// SRT for Feedcast: a thin Node-API binding over libsrt (Debian libsrt-openssl-dev), built at
// install by scripts/build-native.mjs when the library is there, loaded by
// src/protocols/srt/native-srt.ts. Optional: without it the server says SRT is off and why.
//
// Threads. libsrt has no file descriptors that libuv could watch, so readiness comes from SRT's
// own epoll. The simplest correct design we found: one waiter thread per Poller blocks in
// srt_epoll_uwait(); when something is ready it wakes the main thread through a threadsafe
// function and then sleeps until JavaScript says it has handled everything (resume()). All
// accepts, reads, writes and closes happen on the main thread, in non-blocking mode, so no
// JavaScript object or Feedcast state is ever touched from another thread, and the level-triggered
// epoll cannot make the waiter spin while the main thread has not read yet. The listen callback
// (which libsrt runs on its own thread during the handshake, before accept) only reads a table of
// passphrases that the main thread sets under a mutex: a per-feed SRTPassphrase must be set on the
// new socket there, before the key exchange, so it cannot wait for JavaScript.
//
// createPoller(onReady: () => void): Poller     starts the waiter thread
// stopPoller(p)                                 stops it (idempotent)
// resume(p)                                     the main thread handled the last wake-up
// poll(p): Int32Array [sock, events, ...]       ready sockets now (never waits)
// listen(p, host, port, latencyMs): [sock, port]
// setPassphrases(p, listener, names: string[], passphrases: string[])
// accept(p, listener): null | { sock, streamId, address, port, encrypted }
// recv(p, sock): Buffer (empty when nothing is waiting) | number (SRT error code: connection gone)
// send(p, sock, data, offset): bytes taken (< data.length - offset when the send buffer is full),
//                              or -code (connection gone)
// watchWritable(p, sock, on)                    adds / removes SRT_EPOLL_OUT for a socket
// stats(p, sock): { ... } | null                srt_bstats totals
// close(p, sock)
// resourceKey(streamId): string          the passphrase table's key for a stream id (unit tests)
// EPOLL_IN, EPOLL_OUT, EPOLL_ERR: the event bits poll() reports

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <srt/srt.h>

#define MAX_MESSAGE 1500
#define TS_MESSAGE 1316 /* 7 TS packets: SRT live mode's payload size */
#define RECV_BUFFER (64 * 1024)

typedef struct Listener {
  SRTSOCKET sock;
  pthread_mutex_t mu;
  /* A flat table: names[i] (lower case, no .ffm) -> passphrases[i]. */
  char **names;
  char **passphrases;
  size_t count;
  struct Listener *next;
} Listener;

typedef struct {
  int eid;
  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int pending;
  int stopping;
  napi_threadsafe_function tsfn;
  Listener *listeners;
  char recv_buffer[RECV_BUFFER];
} Poller;

static int srt_ready = 0;

static napi_value throw_error(napi_env env, const char *what) {
  char message[512];
  snprintf(message, sizeof message, "%s: %s", what, srt_getlasterror_str());
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value type_error(napi_env env, const char *message) {
  napi_throw_type_error(env, NULL, message);
  return NULL;
}

static Poller *poller_arg(napi_env env, napi_value value) {
  void *data = NULL;
  if (napi_get_value_external(env, value, &data) != napi_ok || data == NULL) return NULL;
  Poller *p = data;
  return p->stopping ? NULL : p;
}

static int int_arg(napi_env env, napi_value value, int32_t *out) {
  return napi_get_value_int32(env, value, out) == napi_ok;
}

static napi_value make_int(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

/* ---- the waiter thread ------------------------------------------------------------------- */

static void *wait_loop(void *arg) {
  Poller *p = arg;
  SRT_EPOLL_EVENT events[1];
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (p->pending && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
    int stop = p->stopping;
    pthread_mutex_unlock(&p->mu);
    if (stop) break;
    /* 100 ms: how long stopPoller may wait for this thread. */
    int n = srt_epoll_uwait(p->eid, events, 1, 100);
    if (n > 0) {
      pthread_mutex_lock(&p->mu);
      p->pending = 1;
      pthread_mutex_unlock(&p->mu);
      napi_call_threadsafe_function(p->tsfn, NULL, napi_tsfn_nonblocking);
    }
  }
  return NULL;
}

static void call_js(napi_env env, napi_value js_callback, void *context, void *data) {
  (void)data;
  Poller *p = context;
  if (env == NULL || js_callback == NULL || p->stopping) return;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, js_callback, 0, NULL, NULL);
}

static void free_listener(Listener *l) {
  for (size_t i = 0; i < l->count; i++) {
    free(l->names[i]);
    free(l->passphrases[i]);
  }
  free(l->names);
  free(l->passphrases);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

static void stop(Poller *p) {
  if (p->stopping) return;
  pthread_mutex_lock(&p->mu);
  p->stopping = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  if (p->started) pthread_join(p->thread, NULL);
  p->started = 0;
  for (Listener *l = p->listeners; l != NULL; l = l->next) srt_close(l->sock);
  srt_epoll_release(p->eid);
  napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
}

static void finalize_poller(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  Poller *p = data;
  stop(p);
  Listener *l = p->listeners;
  while (l != NULL) {
    Listener *next = l->next;
    free_listener(l);
    l = next;
  }
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

static napi_value create_poller(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype type;
  if (argc < 1 || napi_typeof(env, argv[0], &type) != napi_ok || type != napi_function) {
    return type_error(env, "createPoller(onReady): onReady must be a function");
  }
  Poller *p = calloc(1, sizeof *p);
  if (p == NULL) return type_error(env, "createPoller: out of memory");
  p->eid = srt_epoll_create();
  if (p->eid < 0) {
    free(p);
    return throw_error(env, "srt_epoll_create");
  }
  srt_epoll_set(p->eid, SRT_EPOLL_ENABLE_EMPTY);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  napi_value name;
  napi_create_string_utf8(env, "feedcast-srt", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, p, call_js, &p->tsfn) != napi_ok) {
    srt_epoll_release(p->eid);
    free(p);
    return type_error(env, "createPoller: cannot create the threadsafe function");
  }
  /* The HTTP listener keeps the process alive; SRT alone does not. */
  napi_unref_threadsafe_function(env, p->tsfn);
  if (pthread_create(&p->thread, NULL, wait_loop, p) != 0) {
    napi_release_threadsafe_function(p->tsfn, napi_tsfn_abort);
    srt_epoll_release(p->eid);
    free(p);
    return type_error(env, "createPoller: cannot start the waiter thread");
  }
  p->started = 1;
  napi_value out;
  napi_create_external(env, p, finalize_poller, NULL, &out);
  return out;
}

static napi_value stop_poller(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok || data == NULL) {
    return type_error(env, "stopPoller(poller)");
  }
  stop(data);
  return NULL;
}

static napi_value resume(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 1 ? poller_arg(env, argv[0]) : NULL;
  if (p == NULL) return NULL;
  pthread_mutex_lock(&p->mu);
  p->pending = 0;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

static napi_value poll_now(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 1 ? poller_arg(env, argv[0]) : NULL;
  if (p == NULL) return type_error(env, "poll(poller): poller stopped");
  SRT_EPOLL_EVENT events[256];
  int n = srt_epoll_uwait(p->eid, events, 256, 0);
  if (n < 0) n = 0; /* a timeout is an error here: nothing ready */
  if (n > 256) n = 256;
  napi_value buffer, out;
  void *bytes;
  napi_create_arraybuffer(env, (size_t)n * 2 * sizeof(int32_t), &bytes, &buffer);
  int32_t *ints = bytes;
  for (int i = 0; i < n; i++) {
    ints[2 * i] = events[i].fd;
    ints[2 * i + 1] = events[i].events;
  }
  napi_create_typedarray(env, napi_int32_array, (size_t)n * 2, buffer, 0, &out);
  return out;
}

/* ---- listening ------------------------------------------------------------------------------ */

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/** A stream id some callers percent-encode (OvenMediaEngine asks for it; ffmpeg sends it as given): decoded. */
static void percent_decode(const char *in, char *out, size_t size) {
  size_t n = 0;
  for (size_t i = 0; in[i] != '\0' && n + 1 < size; i++) {
    int hi, lo;
    if (in[i] == '%' && (hi = hex_value(in[i + 1])) >= 0 && (lo = hex_value(in[i + 2])) >= 0) {
      out[n++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[n++] = in[i];
    }
  }
  out[n] = '\0';
}

/** The resource a stream id names, as Feedcast's table keys it: lower case, no query, no .ffm. */
static void resource_key(const char *raw, char *out, size_t size) {
  char streamid[600];
  percent_decode(raw, streamid, sizeof streamid);
  const char *start = streamid;
  size_t len = strlen(streamid);
  if (strncmp(streamid, "#!::", 4) == 0) {
    const char *item = streamid + 4;
    start = "";
    len = 0;
    while (*item != '\0') {
      const char *end = strchr(item, ',');
      size_t item_len = end != NULL ? (size_t)(end - item) : strlen(item);
      if (item_len >= 2 && item[0] == 'r' && item[1] == '=') {
        start = item + 2;
        len = item_len - 2;
      }
      if (end == NULL) break;
      item = end + 1;
    }
  } else if (strncmp(streamid, "publish:", 8) == 0) {
    start = streamid + 8;
    len -= 8;
  } else if (strncmp(streamid, "read:", 5) == 0) {
    start = streamid + 5;
    len -= 5;
  }
  /* Up to a query; from after the last '/' (`live/feed1` names feed1). */
  for (size_t i = 0; i < len; i++) {
    if (start[i] == '?') {
      len = i;
      break;
    }
  }
  for (size_t i = len; i > 0; i--) {
    if (start[i - 1] == '/') {
      start += i;
      len -= i;
      break;
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < len && n + 1 < size; i++) out[n++] = (char)tolower((unsigned char)start[i]);
  out[n] = '\0';
  if (n >= 4 && strcmp(out + n - 4, ".ffm") == 0) out[n - 4] = '\0';
}

/* Runs on libsrt's thread during the handshake: sets the feed's passphrase on the new socket. */
static int on_listen(void *opaque, SRTSOCKET ns, int hsversion, const struct sockaddr *peer, const char *streamid) {
  (void)hsversion;
  (void)peer;
  Listener *l = opaque;
  char key[600];
  resource_key(streamid != NULL ? streamid : "", key, sizeof key);
  int result = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->count; i++) {
    if (strcmp(l->names[i], key) == 0) {
      const char *pass = l->passphrases[i];
      if (srt_setsockflag(ns, SRTO_PASSPHRASE, pass, (int)strlen(pass)) != 0) result = -1;
      break;
    }
  }
  pthread_mutex_unlock(&l->mu);
  return result;
}

static napi_value listen_on(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 4 ? poller_arg(env, argv[0]) : NULL;
  char host[128];
  size_t host_len;
  int32_t port, latency;
  if (p == NULL || napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len) != napi_ok ||
      !int_arg(env, argv[2], &port) || !int_arg(env, argv[3], &latency) || port < 0 || port > 65535) {
    return type_error(env, "listen(poller, host, port, latencyMs)");
  }
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  int addr_len;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    addr_len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    addr_len = sizeof *v6;
  } else {
    return type_error(env, "listen: the bind address is not an IPv4 or IPv6 address");
  }
  SRTSOCKET s = srt_create_socket();
  if (s == SRT_INVALID_SOCK) return throw_error(env, "srt_create_socket");
  int no = 0;
  srt_setsockflag(s, SRTO_RCVSYN, &no, sizeof no);
  srt_setsockflag(s, SRTO_SNDSYN, &no, sizeof no);
  if (srt_setsockflag(s, SRTO_LATENCY, &latency, sizeof latency) != 0) {
    srt_close(s);
    return throw_error(env, "SRTLatency");
  }
  if (srt_bind(s, (struct sockaddr *)&addr, addr_len) != 0) {
    napi_value err = throw_error(env, "srt_bind");
    srt_close(s);
    return err;
  }
  Listener *l = calloc(1, sizeof *l);
  if (l == NULL) {
    srt_close(s);
    return type_error(env, "listen: out of memory");
  }
  pthread_mutex_init(&l->mu, NULL);
  l->sock = s;
  if (srt_listen_callback(s, on_listen, l) != 0 || srt_listen(s, 64) != 0) {
    napi_value err = throw_error(env, "srt_listen");
    srt_close(s);
    free_listener(l);
    return err;
  }
  l->next = p->listeners;
  p->listeners = l;
  int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
  srt_epoll_add_usock(p->eid, s, &events);
  struct sockaddr_storage bound;
  int bound_len = sizeof bound;
  int bound_port = port;
  if (srt_getsockname(s, (struct sockaddr *)&bound, &bound_len) == 0) {
    bound_port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                             : ntohs(((struct sockaddr_in *)&bound)->sin_port);
  }
  napi_value out;
  napi_create_array_with_length(env, 2, &out);
  napi_set_element(env, out, 0, make_int(env, s));
  napi_set_element(env, out, 1, make_int(env, bound_port));
  return out;
}

static char *string_at(napi_env env, napi_value array, uint32_t i) {
  napi_value v;
  size_t len;
  if (napi_get_element(env, array, i, &v) != napi_ok || napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s != NULL) napi_get_value_string_utf8(env, v, s, len + 1, &len);
  return s;
}

static napi_value set_passphrases(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 4 ? poller_arg(env, argv[0]) : NULL;
  int32_t sock;
  uint32_t count = 0, count2 = 0;
  if (p == NULL || !int_arg(env, argv[1], &sock) || napi_get_array_length(env, argv[2], &count) != napi_ok ||
      napi_get_array_length(env, argv[3], &count2) != napi_ok || count != count2) {
    return type_error(env, "setPassphrases(poller, listener, names, passphrases)");
  }
  Listener *l = p->listeners;
  while (l != NULL && l->sock != sock) l = l->next;
  if (l == NULL) return type_error(env, "setPassphrases: no such listener");
  char **names = calloc(count + 1, sizeof *names);
  char **passes = calloc(count + 1, sizeof *passes);
  for (uint32_t i = 0; i < count && names != NULL && passes != NULL; i++) {
    names[i] = string_at(env, argv[2], i);
    passes[i] = string_at(env, argv[3], i);
  }
  pthread_mutex_lock(&l->mu);
  char **old_names = l->names, **old_passes = l->passphrases;
  size_t old_count = l->count;
  l->names = names;
  l->passphrases = passes;
  l->count = names != NULL && passes != NULL ? count : 0;
  pthread_mutex_unlock(&l->mu);
  for (size_t i = 0; i < old_count; i++) {
    free(old_names[i]);
    free(old_passes[i]);
  }
  free(old_names);
  free(old_passes);
  return NULL;
}

/* ---- connections ---------------------------------------------------------------------------- */

static napi_value accept_one(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 2 ? poller_arg(env, argv[0]) : NULL;
  int32_t listener;
  if (p == NULL || !int_arg(env, argv[1], &listener)) return type_error(env, "accept(poller, listener)");
  struct sockaddr_storage peer;
  int peer_len = sizeof peer;
  SRTSOCKET s = srt_accept(listener, (struct sockaddr *)&peer, &peer_len);
  napi_value out;
  if (s == SRT_INVALID_SOCK) {
    napi_get_null(env, &out);
    return out;
  }
  char streamid[520];
  int streamid_len = sizeof streamid - 1;
  if (srt_getsockflag(s, SRTO_STREAMID, streamid, &streamid_len) != 0 || streamid_len < 0) streamid_len = 0;
  streamid[streamid_len] = '\0';
  int32_t km = 0;
  int km_len = sizeof km;
  srt_getsockflag(s, SRTO_KMSTATE, &km, &km_len);
  char address[INET6_ADDRSTRLEN] = "";
  int port = 0;
  if (peer.ss_family == AF_INET6) {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&peer;
    inet_ntop(AF_INET6, &v6->sin6_addr, address, sizeof address);
    port = ntohs(v6->sin6_port);
  } else {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&peer;
    inet_ntop(AF_INET, &v4->sin_addr, address, sizeof address);
    port = ntohs(v4->sin_port);
  }
  int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
  srt_epoll_add_usock(p->eid, s, &events);
  napi_value v;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "sock", make_int(env, s));
  napi_create_string_utf8(env, streamid, (size_t)streamid_len, &v);
  napi_set_named_property(env, out, "streamId", v);
  napi_create_string_utf8(env, address, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, out, "address", v);
  napi_set_named_property(env, out, "port", make_int(env, port));
  napi_get_boolean(env, km == SRT_KM_S_SECURED, &v);
  napi_set_named_property(env, out, "encrypted", v);
  return out;
}

static napi_value recv_all(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 2 ? poller_arg(env, argv[0]) : NULL;
  int32_t sock;
  if (p == NULL || !int_arg(env, argv[1], &sock)) return type_error(env, "recv(poller, sock)");
  size_t used = 0;
  while (used + MAX_MESSAGE <= RECV_BUFFER) {
    int n = srt_recvmsg(sock, p->recv_buffer + used, MAX_MESSAGE);
    if (n > 0) {
      used += (size_t)n;
      continue;
    }
    if (n == SRT_ERROR) {
      int code = srt_getlasterror(NULL);
      if (code == SRT_EASYNCRCV) break;
      if (used > 0) break; /* hand over what came; the error shows again on the next call */
      return make_int(env, code);
    }
    break;
  }
  napi_value out;
  void *copy;
  napi_create_buffer_copy(env, used, p->recv_buffer, &copy, &out);
  return out;
}

static napi_value send_data(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 4 ? poller_arg(env, argv[0]) : NULL;
  int32_t sock, offset;
  void *data;
  size_t length;
  bool is_buffer = false;
  if (p == NULL || !int_arg(env, argv[1], &sock) || napi_is_buffer(env, argv[2], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[2], &data, &length) != napi_ok || !int_arg(env, argv[3], &offset) || offset < 0 ||
      (size_t)offset > length) {
    return type_error(env, "send(poller, sock, buffer, offset)");
  }
  size_t at = (size_t)offset;
  while (at < length) {
    size_t n = length - at < TS_MESSAGE ? length - at : TS_MESSAGE;
    int sent = srt_sendmsg(sock, (const char *)data + at, (int)n, -1, 0);
    if (sent == SRT_ERROR) {
      int code = srt_getlasterror(NULL);
      if (code == SRT_EASYNCSND) break;
      return make_int(env, -(int64_t)code);
    }
    at += n;
  }
  return make_int(env, (int64_t)(at - (size_t)offset));
}

static napi_value watch_writable(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 3 ? poller_arg(env, argv[0]) : NULL;
  int32_t sock;
  bool on = false;
  if (p == NULL || !int_arg(env, argv[1], &sock) || napi_get_value_bool(env, argv[2], &on) != napi_ok) {
    return type_error(env, "watchWritable(poller, sock, on)");
  }
  int events = SRT_EPOLL_IN | SRT_EPOLL_ERR | (on ? SRT_EPOLL_OUT : 0);
  srt_epoll_update_usock(p->eid, sock, &events);
  return NULL;
}

static void set_number(napi_env env, napi_value obj, const char *name, double v) {
  napi_value value;
  napi_create_double(env, v, &value);
  napi_set_named_property(env, obj, name, value);
}

static napi_value stats(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 2 ? poller_arg(env, argv[0]) : NULL;
  int32_t sock;
  if (p == NULL || !int_arg(env, argv[1], &sock)) return type_error(env, "stats(poller, sock)");
  SRT_TRACEBSTATS s;
  napi_value out;
  if (srt_bstats(sock, &s, 0) != 0) {
    napi_get_null(env, &out);
    return out;
  }
  napi_create_object(env, &out);
  set_number(env, out, "packetsSent", (double)s.pktSentTotal);
  set_number(env, out, "packetsReceived", (double)s.pktRecvTotal);
  set_number(env, out, "packetsSentLost", (double)s.pktSndLossTotal);
  set_number(env, out, "packetsReceivedLost", (double)s.pktRcvLossTotal);
  set_number(env, out, "packetsRetransmitted", (double)s.pktRetransTotal);
  set_number(env, out, "packetsReceivedUndecrypted", (double)s.pktRcvUndecryptTotal);
  set_number(env, out, "packetsSentDropped", (double)s.pktSndDropTotal);
  set_number(env, out, "packetsReceivedDropped", (double)s.pktRcvDropTotal);
  set_number(env, out, "bytesSent", (double)s.byteSentTotal);
  set_number(env, out, "bytesReceived", (double)s.byteRecvTotal);
  set_number(env, out, "rttMs", s.msRTT);
  set_number(env, out, "bandwidthMbps", s.mbpsBandwidth);
  return out;
}

static napi_value close_sock(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  Poller *p = argc >= 2 ? poller_arg(env, argv[0]) : NULL;
  int32_t sock;
  if (p == NULL || !int_arg(env, argv[1], &sock)) return NULL;
  srt_epoll_remove_usock(p->eid, sock);
  srt_close(sock);
  return NULL;
}

/* For the unit test that keeps resource_key and src/protocols/srt/stream-id.ts in step. */
static napi_value resource_key_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char streamid[600], key[600];
  size_t len;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], streamid, sizeof streamid, &len) != napi_ok) {
    return type_error(env, "resourceKey(streamId)");
  }
  resource_key(streamid, key, sizeof key);
  napi_value out;
  napi_create_string_utf8(env, key, NAPI_AUTO_LENGTH, &out);
  return out;
}

static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  uint32_t v = srt_getversion();
  char text[32];
  snprintf(text, sizeof text, "%u.%u.%u", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
  napi_value out;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &out);
  return out;
}

NAPI_MODULE_INIT() {
  if (!srt_ready) {
    if (srt_startup() < 0) {
      napi_throw_error(env, NULL, "srt_startup failed");
      return NULL;
    }
    srt_setloglevel(2); /* LOG_CRIT: libsrt's own logging stays quiet; Feedcast logs what matters */
    srt_ready = 1;
  }
  napi_property_descriptor props[] = {
      {"createPoller", NULL, create_poller, NULL, NULL, NULL, napi_default, NULL},
      {"stopPoller", NULL, stop_poller, NULL, NULL, NULL, napi_default, NULL},
      {"resume", NULL, resume, NULL, NULL, NULL, napi_default, NULL},
      {"poll", NULL, poll_now, NULL, NULL, NULL, napi_default, NULL},
      {"listen", NULL, listen_on, NULL, NULL, NULL, napi_default, NULL},
      {"setPassphrases", NULL, set_passphrases, NULL, NULL, NULL, napi_default, NULL},
      {"accept", NULL, accept_one, NULL, NULL, NULL, napi_default, NULL},
      {"recv", NULL, recv_all, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, send_data, NULL, NULL, NULL, napi_default, NULL},
      {"watchWritable", NULL, watch_writable, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_sock, NULL, NULL, NULL, napi_default, NULL},
      {"resourceKey", NULL, resource_key_js, NULL, NULL, NULL, napi_default, NULL},
      {"version", NULL, version, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value bit;
  napi_create_int32(env, SRT_EPOLL_IN, &bit);
  napi_set_named_property(env, exports, "EPOLL_IN", bit);
  napi_create_int32(env, SRT_EPOLL_OUT, &bit);
  napi_set_named_property(env, exports, "EPOLL_OUT", bit);
  napi_create_int32(env, SRT_EPOLL_ERR, &bit);
  napi_set_named_property(env, exports, "EPOLL_ERR", bit);
  return exports;
}
