// Shared by the UDP senders of the native modules (rtp-send.c for WHEP, rtp-udp.c for RTSP): a
// destination address from its text, its Node-API arguments, and one frame's
// datagrams sent in sendmmsg() calls of up to UDP_BATCH (Linux; one sendto() each elsewhere).
// Header-only (static functions): each module is still one `cc` call in scripts/build-native.mjs.

#ifndef FEEDCAST_UDP_BATCH_H
#define FEEDCAST_UDP_BATCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg, recvmmsg */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include "napi-args.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/** `to` from an IPv4 or IPv6 address in text and a port; 0 when the text is no IP address. */
static int udp_destination(const char *host, int32_t port, struct sockaddr_storage *to, socklen_t *to_length) {
  memset(to, 0, sizeof *to);
  if (strchr(host, ':') != NULL) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)to;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *to_length = sizeof *a;
    return inet_pton(AF_INET6, host, &a->sin6_addr) == 1;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)to;
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *to_length = sizeof *a;
  return inet_pton(AF_INET, host, &a->sin_addr) == 1;
}

/** The address and port arguments of a send function (argv[0], argv[1]) as `to`; 0 after throwing. */
static int destination_arguments(napi_env env, napi_value *argv, const char *who, struct sockaddr_storage *to, socklen_t *to_length) {
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_length;
  int32_t port;
  char message[160];
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_length) != napi_ok) {
    snprintf(message, sizeof message, "%s: address must be a string", who);
    fail(env, message);
    return 0;
  }
  if (napi_get_value_int32(env, argv[1], &port) != napi_ok || port <= 0 || port > 65535) {
    snprintf(message, sizeof message, "%s: port must be in 1..65535", who);
    fail(env, message);
    return 0;
  }
  if (!udp_destination(host, port, to, to_length)) {
    snprintf(message, sizeof message, "%s: address is not an IP address", who);
    fail(env, message);
    return 0;
  }
  return 1;
}

#define UDP_BATCH 64

/**
 * Sends `count` datagrams of `data` to `to`, non-blocking: datagram i is data[begin_i, ends[i·stride]),
 * where begin_i is starts[i·stride] when `starts` is given, else the end of the one before (0 for the
 * first). The caller has checked the bounds. Returns how many left, or -errno when the first could not;
 * a kernel that takes fewer than asked (send buffer full) ends the call: the next would fail.
 */
static int32_t send_datagrams(int fd, uint8_t *data, const int32_t *starts, const int32_t *ends, int stride, int32_t count,
                              const struct sockaddr_storage *to, socklen_t to_length) {
  int32_t sent = 0;
#ifdef __linux__
  struct mmsghdr messages[UDP_BATCH];
  struct iovec vectors[UDP_BATCH];
  while (sent < count) {
    int n = count - sent < UDP_BATCH ? count - sent : UDP_BATCH;
    for (int j = 0; j < n; j++) {
      int32_t i = sent + j;
      int32_t begin = starts != NULL ? starts[i * stride] : i == 0 ? 0 : ends[(i - 1) * stride];
      vectors[j].iov_base = data + begin;
      vectors[j].iov_len = (size_t)(ends[i * stride] - begin);
      memset(&messages[j], 0, sizeof messages[j]);
      messages[j].msg_hdr.msg_name = (void *)to;
      messages[j].msg_hdr.msg_namelen = to_length;
      messages[j].msg_hdr.msg_iov = &vectors[j];
      messages[j].msg_hdr.msg_iovlen = 1;
    }
    int r;
    do {
      r = sendmmsg(fd, messages, (unsigned int)n, MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return sent > 0 ? sent : -errno;
    sent += r;
    if (r < n) break;
  }
#else
  for (; sent < count; sent++) {
    int32_t begin = starts != NULL ? starts[sent * stride] : sent == 0 ? 0 : ends[(sent - 1) * stride];
    ssize_t r;
    do {
      r = sendto(fd, data + begin, (size_t)(ends[sent * stride] - begin), MSG_DONTWAIT, (const struct sockaddr *)to, to_length);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return sent > 0 ? sent : -errno;
  }
#endif
  return sent;
}

#endif
