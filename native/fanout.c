// One send() per socket for a fan-out batch, in a C loop (Node-API, so one build serves every
// Node version). At 1000 HTTP-FLV readers the server is one write per reader per video frame;
// through net.Socket each costs ~1.7 µs of JavaScript and Node bookkeeping on top of the ~7.5 µs
// system call, here ~0.4 µs (docs/performance.md, "Native fan-out"). send() rather than write():
// it skips the file layer (~4% less per call here) and, with MSG_NOSIGNAL, a closed peer is an
// EPIPE result, never a SIGPIPE. Loaded by src/streams/native-fanout.ts, which hands over only
// sockets with nothing queued in Node, and queues in Node whatever the kernel does not take.
//
// writeAll(fds: Int32Array, count: number, data: Uint8Array, results: Int32Array): undefined
//   For i < count: results[i] = bytes sent to fds[i] (maybe fewer than data.length), or -errno.
// dupFd(fd: number): number     a new descriptor for the same socket (close-on-exec), or -errno
// closeFd(fd: number): number   0, or -errno
//   For the egress threads (src/streams/egress-threads.ts): a thread writes through a descriptor
//   of its own, so the main thread closing a socket can never make it write into another one
//   that reused the number.

#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include "napi-args.h"
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: no such flag; Node ignores SIGPIPE anyway */
#endif

static napi_value write_all(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) {
    return fail(env, "writeAll(fds, count, data, results): four arguments");
  }
  int32_t *fds;
  int32_t *results;
  uint8_t *data;
  size_t fd_count, result_count, data_length;
  int32_t count;
  if (!typed_array(env, argv[0], napi_int32_array, (void **)&fds, &fd_count)) return fail(env, "writeAll: fds must be an Int32Array");
  if (napi_get_value_int32(env, argv[1], &count) != napi_ok || count < 0) return fail(env, "writeAll: count must be a number >= 0");
  if (!typed_array(env, argv[2], napi_uint8_array, (void **)&data, &data_length)) return fail(env, "writeAll: data must be a Uint8Array");
  if (!typed_array(env, argv[3], napi_int32_array, (void **)&results, &result_count)) {
    return fail(env, "writeAll: results must be an Int32Array");
  }
  if ((size_t)count > fd_count || (size_t)count > result_count) return fail(env, "writeAll: count is larger than fds or results");
  if (data_length > INT32_MAX) return fail(env, "writeAll: data is larger than 2 GiB");
  for (int32_t i = 0; i < count; i++) {
    ssize_t written;
    do {
      written = send(fds[i], data, data_length, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (written < 0 && errno == EINTR);
    results[i] = written >= 0 ? (int32_t)written : -errno;
  }
  return NULL;
}

/** The one int32 argument >= 0 of dupFd/closeFd, or -1 after throwing. */
static int32_t fd_argument(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    fail(env, usage);
    return -1;
  }
  return fd;
}

static napi_value dup_fd(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "dupFd(fd): fd must be a number >= 0");
  if (fd < 0) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return int_result(env, copy >= 0 ? copy : -errno);
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  int32_t fd = fd_argument(env, info, "closeFd(fd): fd must be a number >= 0");
  if (fd < 0) return NULL;
  return int_result(env, close(fd) == 0 ? 0 : -errno);
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "writeAll", write_all) || !export_function(env, exports, "dupFd", dup_fd) ||
      !export_function(env, exports, "closeFd", close_fd)) {
    return NULL;
  }
  return exports;
}
