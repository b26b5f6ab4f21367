// RTP over plain UDP in batches (Node-API, so one build serves every Node version), loaded by
// src/protocols/rtsp/native-udp-send.ts. RTSP readers over UDP: a frame's packets, shared by every
// reader of the feed, leave in one sendmmsg() per reader instead of one dgram send() per packet
// from Node (~190 a second per reader for a 2 Mb/s feed: docs/performance.md, "RTSP readers").
// The receiving half is the benchmark's RTSP/UDP load generator (bench/rtsp-reader-core.ts): one
// process receiving every reader's datagrams, which through dgram's one 'message' per datagram
// could not keep up; here recvmmsg() on the sockets epoll says are ready, keeping only each
// datagram's first bytes.
// Not UDP GSO (UDP_SEGMENT): tried, and over loopback a player with ffmpeg's 64 KB socket buffer lost
// most of a GOP-cache catch-up (test/integration/rtsp-udp-pacing.test.ts), even with runs of 8.
//
// sendPackets(fd, data, bounds, count, address, port): number
//   Datagram i is data[bounds[2i], bounds[2i+1]), sent to address:port through fd, non-blocking.
//   Returns how many left, or -errno when the first could not; the caller sends the rest through
//   Node, which queues them.
// bindUdp(address, port, receiveBufferBytes): number   a bound non-blocking UDP socket, or -errno
// localPort(fd): number                                 its port, or -errno
// openPoller(): number                                  an epoll descriptor, or -errno
// watch(poller, fd, tag): number                        0, or -errno: fd's datagrams come with `tag`
// receiveHeads(poller, out, recordBytes): number
//   Receives what the watched sockets hold, as records of recordBytes in out: u32 tag, u32 the
//   datagram's whole length (little-endian), then its first recordBytes - 8 bytes. Returns how many
//   records (out full: call again), or -errno.
// closeFd(fd): number                                   0, or -errno

#include "udp-batch.h"
#include <fcntl.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif


static napi_value send_packets(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    return fail(env, "sendPackets(fd, data, bounds, count, address, port): six arguments");
  }
  int32_t fd, count;
  uint8_t *data;
  int32_t *bounds;
  size_t data_length, bounds_length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return fail(env, "sendPackets: fd must be a number >= 0");
  if (!typed_array(env, argv[1], napi_uint8_array, (void **)&data, &data_length)) return fail(env, "sendPackets: data must be a Uint8Array");
  if (!typed_array(env, argv[2], napi_int32_array, (void **)&bounds, &bounds_length)) {
    return fail(env, "sendPackets: bounds must be an Int32Array");
  }
  if (napi_get_value_int32(env, argv[3], &count) != napi_ok || count < 0 || (size_t)count * 2 > bounds_length) {
    return fail(env, "sendPackets: count must be in 0..bounds.length / 2");
  }
  struct sockaddr_storage to;
  socklen_t to_length;
  if (!destination_arguments(env, argv + 4, "sendPackets", &to, &to_length)) return NULL;
  for (int32_t i = 0; i < count; i++) {
    int32_t begin = bounds[2 * i], end = bounds[2 * i + 1];
    if (begin < 0 || end < begin || (size_t)end > data_length) return fail(env, "sendPackets: a packet of bounds is outside data");
  }
  return int_result(env, send_datagrams(fd, data, bounds, bounds + 1, 2, count, &to, to_length));
}

/** The int32 arguments of a call, all >= 0; 0 after throwing `usage`. */
static int int_arguments(napi_env env, napi_callback_info info, size_t want, int32_t *values, napi_value *argv, const char *usage) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    fail(env, usage);
    return 0;
  }
  for (size_t i = 0; i < want; i++) {
    if (values == NULL) break;
    if (napi_get_value_int32(env, argv[i], &values[i]) != napi_ok || values[i] < 0) {
      fail(env, usage);
      return 0;
    }
  }
  return 1;
}

static napi_value bind_udp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    return fail(env, "bindUdp(address, port, receiveBufferBytes): three arguments");
  }
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_length;
  int32_t port, buffer_bytes;
  struct sockaddr_storage at;
  socklen_t at_length;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_length) != napi_ok) return fail(env, "bindUdp: address must be a string");
  if (napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535) return fail(env, "bindUdp: port must be in 0..65535");
  if (napi_get_value_int32(env, argv[2], &buffer_bytes) != napi_ok || buffer_bytes < 0) {
    return fail(env, "bindUdp: receiveBufferBytes must be a number >= 0");
  }
  if (!udp_destination(host, port, &at, &at_length)) return fail(env, "bindUdp: address is not an IP address");
  int fd = socket(at.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) return int_result(env, -errno);
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
      (buffer_bytes > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes) < 0) ||
      bind(fd, (struct sockaddr *)&at, at_length) < 0) {
    int err = errno;
    close(fd);
    return int_result(env, -err);
  }
  return int_result(env, fd);
}

static napi_value local_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!int_arguments(env, info, 1, &fd, argv, "localPort(fd): fd must be a number >= 0")) return NULL;
  struct sockaddr_storage at;
  socklen_t at_length = sizeof at;
  if (getsockname(fd, (struct sockaddr *)&at, &at_length) < 0) return int_result(env, -errno);
  uint16_t port = at.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&at)->sin6_port : ((struct sockaddr_in *)&at)->sin_port;
  return int_result(env, ntohs(port));
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!int_arguments(env, info, 1, &fd, argv, "closeFd(fd): fd must be a number >= 0")) return NULL;
  return int_result(env, close(fd) == 0 ? 0 : -errno);
}

#ifdef __linux__
static napi_value open_poller(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return int_result(env, fd >= 0 ? fd : -errno);
}

static napi_value watch(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t values[3];
  if (!int_arguments(env, info, 3, values, argv, "watch(poller, fd, tag): three numbers >= 0")) return NULL;
  struct epoll_event event;
  memset(&event, 0, sizeof event);
  event.events = EPOLLIN;
  event.data.u64 = ((uint64_t)(uint32_t)values[2] << 32) | (uint32_t)values[1];
  return int_result(env, epoll_ctl(values[0], EPOLL_CTL_ADD, values[1], &event) == 0 ? 0 : -errno);
}

#define READY_MAX 256

static void put_u32le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static napi_value receive_heads(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    return fail(env, "receiveHeads(poller, out, recordBytes): three arguments");
  }
  int32_t poller, record_bytes;
  uint8_t *out;
  size_t out_length;
  if (napi_get_value_int32(env, argv[0], &poller) != napi_ok || poller < 0) return fail(env, "receiveHeads: poller must be a number >= 0");
  if (!typed_array(env, argv[1], napi_uint8_array, (void **)&out, &out_length)) return fail(env, "receiveHeads: out must be a Uint8Array");
  if (napi_get_value_int32(env, argv[2], &record_bytes) != napi_ok || record_bytes < 12 || record_bytes > 4096) {
    return fail(env, "receiveHeads: recordBytes must be in 12..4096");
  }
  size_t capacity = out_length / (size_t)record_bytes;
  struct epoll_event ready[READY_MAX];
  int n;
  do {
    n = epoll_wait(poller, ready, READY_MAX, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return int_result(env, -errno);
  size_t records = 0;
  struct mmsghdr messages[UDP_BATCH];
  struct iovec vectors[UDP_BATCH];
  for (int k = 0; k < n && records < capacity; k++) {
    int fd = (int)(uint32_t)ready[k].data.u64;
    uint32_t tag = (uint32_t)(ready[k].data.u64 >> 32);
    for (;;) {
      size_t room = capacity - records;
      int want = room < UDP_BATCH ? (int)room : UDP_BATCH;
      if (want == 0) break;
      for (int j = 0; j < want; j++) {
        vectors[j].iov_base = out + (records + (size_t)j) * (size_t)record_bytes + 8;
        vectors[j].iov_len = (size_t)record_bytes - 8;
        memset(&messages[j], 0, sizeof messages[j]);
        messages[j].msg_hdr.msg_iov = &vectors[j];
        messages[j].msg_hdr.msg_iovlen = 1;
      }
      int got;
      do {
        /* MSG_TRUNC: msg_len is each datagram's whole length, not what fitted in its record. */
        got = recvmmsg(fd, messages, (unsigned int)want, MSG_DONTWAIT | MSG_TRUNC, NULL);
      } while (got < 0 && errno == EINTR);
      if (got <= 0) break; /* EAGAIN: drained (level-triggered epoll says when there is more) */
      for (int j = 0; j < got; j++) {
        uint8_t *record = out + (records + (size_t)j) * (size_t)record_bytes;
        put_u32le(record, tag);
        put_u32le(record + 4, messages[j].msg_len);
      }
      records += (size_t)got;
      if (got < want) break;
    }
  }
  return int_result(env, (int32_t)records);
}
#else
static napi_value unsupported(napi_env env, napi_callback_info info) {
  (void)info;
  return int_result(env, -ENOSYS);
}
#define open_poller unsupported
#define watch unsupported
#define receive_heads unsupported
#endif

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "sendPackets", send_packets) || !export_function(env, exports, "bindUdp", bind_udp) ||
      !export_function(env, exports, "localPort", local_port) || !export_function(env, exports, "openPoller", open_poller) ||
      !export_function(env, exports, "watch", watch) || !export_function(env, exports, "receiveHeads", receive_heads) ||
      !export_function(env, exports, "closeFd", close_fd)) {
    return NULL;
  }
  return exports;
}
