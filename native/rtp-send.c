// The WHEP direct send path's per-frame work in C (Node-API, so one build serves every Node
// version), loaded by src/protocols/webrtc/native-rtp-send.ts; without it the same work is done
// with node:crypto and dgram sends (srtp-protect.ts, srtp-sender.ts), which cost several times more
// per packet (docs/performance.md, "WebRTC viewers").
//
// protectDatagrams(profile, key, salt, authKey, data, layout, count): undefined
//   SRTP-protects `count` RTP packets of `data` in place. Packet i starts at layout[4i], has a
//   header of layout[4i+1] bytes and a payload of layout[4i+2] bytes, and its rollover counter is
//   layout[4i+3]; the payload is encrypted where it is and the tag written right after it (room
//   for it is the caller's). profile 1: AES-128-CM + HMAC-SHA1-80 (RFC 3711; salt 14 bytes,
//   authKey 20), profile 7: AEAD AES-128-GCM (RFC 7714; salt 12 bytes, authKey unused). The
//   session keys are derived by the caller. OpenSSL is the one Node itself carries: its symbols
//   are resolved in the Node process when the module loads.
// sendDatagrams(fd, data, ends, count, address, port): number
//   UDP: datagram i is data[ends[i-1] (0 for i = 0), ends[i]), all to address:port, in
//   sendmmsg() calls of up to 64 (Linux; one sendto() each elsewhere), non-blocking. Returns how
//   many left, or -errno when the first could not; the caller sends the rest through Node, which
//   queues them.

#define OPENSSL_SUPPRESS_DEPRECATED /* HMAC_CTX: the one HMAC API both OpenSSL 1.1 and 3 have */
#include "udp-batch.h" /* fail, int_result, typed_array, export_function, send_datagrams */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#define PROFILE_AES_CM_HMAC_SHA1_80 1
#define PROFILE_AEAD_AES_128_GCM 7

static void write32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static napi_value protect_datagrams(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 7) {
    return fail(env, "protectDatagrams(profile, key, salt, authKey, data, layout, count): seven arguments");
  }
  int32_t profile, count;
  uint8_t *key, *salt, *auth_key, *data;
  int32_t *layout;
  size_t key_length, salt_length, auth_key_length, data_length, layout_length;
  if (napi_get_value_int32(env, argv[0], &profile) != napi_ok ||
      (profile != PROFILE_AES_CM_HMAC_SHA1_80 && profile != PROFILE_AEAD_AES_128_GCM)) {
    return fail(env, "protectDatagrams: profile must be 1 (AES-CM) or 7 (AES-GCM)");
  }
  int gcm = profile == PROFILE_AEAD_AES_128_GCM;
  size_t want_salt = gcm ? 12 : 14;
  size_t tag_length = gcm ? 16 : 10;
  if (!typed_array(env, argv[1], napi_uint8_array, (void **)&key, &key_length) || key_length != 16) {
    return fail(env, "protectDatagrams: key must be a Uint8Array of 16 bytes");
  }
  if (!typed_array(env, argv[2], napi_uint8_array, (void **)&salt, &salt_length) || salt_length != want_salt) {
    return fail(env, "protectDatagrams: salt must be a Uint8Array of 14 (AES-CM) or 12 (AES-GCM) bytes");
  }
  if (!typed_array(env, argv[3], napi_uint8_array, (void **)&auth_key, &auth_key_length) || (!gcm && auth_key_length != 20)) {
    return fail(env, "protectDatagrams: authKey must be a Uint8Array (20 bytes for AES-CM)");
  }
  if (!typed_array(env, argv[4], napi_uint8_array, (void **)&data, &data_length)) return fail(env, "protectDatagrams: data must be a Uint8Array");
  if (!typed_array(env, argv[5], napi_int32_array, (void **)&layout, &layout_length)) {
    return fail(env, "protectDatagrams: layout must be an Int32Array");
  }
  if (napi_get_value_int32(env, argv[6], &count) != napi_ok || count < 0 || (size_t)count * 4 > layout_length) {
    return fail(env, "protectDatagrams: count must be in 0..layout.length / 4");
  }
  for (int32_t i = 0; i < count; i++) {
    int64_t start = layout[4 * i], header = layout[4 * i + 1], payload = layout[4 * i + 2];
    if (start < 0 || header < 12 || payload < 0 || (uint64_t)(start + header + payload + (int64_t)tag_length) > data_length) {
      return fail(env, "protectDatagrams: a packet of layout is outside data");
    }
  }
  EVP_CIPHER_CTX *cipher = EVP_CIPHER_CTX_new();
  HMAC_CTX *mac = gcm ? NULL : HMAC_CTX_new();
  int ok = cipher != NULL && (gcm || mac != NULL);
  if (ok) ok = EVP_EncryptInit_ex(cipher, gcm ? EVP_aes_128_gcm() : EVP_aes_128_ctr(), NULL, key, NULL) == 1;
  if (ok && !gcm) ok = HMAC_Init_ex(mac, auth_key, 20, EVP_sha1(), NULL) == 1;
  for (int32_t i = 0; ok && i < count; i++) {
    uint8_t *packet = data + layout[4 * i];
    int header = layout[4 * i + 1], payload = layout[4 * i + 2];
    uint32_t roc = (uint32_t)layout[4 * i + 3];
    uint8_t iv[16];
    memset(iv, 0, sizeof iv);
    int n = 0;
    if (gcm) {
      /* RFC 7714 8.1: 00 00 || SSRC || ROC || SEQ, XOR the salt. */
      memcpy(iv + 2, packet + 8, 4);
      write32(iv + 6, roc);
      iv[10] = packet[2];
      iv[11] = packet[3];
      for (int j = 0; j < 12; j++) iv[j] ^= salt[j];
      ok = EVP_EncryptInit_ex(cipher, NULL, NULL, NULL, iv) == 1 && EVP_EncryptUpdate(cipher, NULL, &n, packet, header) == 1 &&
           EVP_EncryptUpdate(cipher, packet + header, &n, packet + header, payload) == 1 &&
           EVP_EncryptFinal_ex(cipher, packet + header + payload, &n) == 1 &&
           EVP_CIPHER_CTX_ctrl(cipher, EVP_CTRL_GCM_GET_TAG, 16, packet + header + payload) == 1;
    } else {
      /* RFC 3711 4.1.1: (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16). */
      memcpy(iv + 4, packet + 8, 4);
      write32(iv + 8, roc);
      iv[12] = packet[2];
      iv[13] = packet[3];
      for (int j = 0; j < 14; j++) iv[j] ^= salt[j];
      uint8_t roc_bytes[4];
      write32(roc_bytes, roc);
      uint8_t digest[EVP_MAX_MD_SIZE];
      unsigned int digest_length = 0;
      ok = EVP_EncryptInit_ex(cipher, NULL, NULL, NULL, iv) == 1 &&
           EVP_EncryptUpdate(cipher, packet + header, &n, packet + header, payload) == 1 &&
           HMAC_Init_ex(mac, NULL, 0, NULL, NULL) == 1 && HMAC_Update(mac, packet, (size_t)(header + payload)) == 1 &&
           HMAC_Update(mac, roc_bytes, 4) == 1 && HMAC_Final(mac, digest, &digest_length) == 1 && digest_length >= 10;
      if (ok) memcpy(packet + header + payload, digest, 10);
    }
  }
  if (mac != NULL) HMAC_CTX_free(mac);
  if (cipher != NULL) EVP_CIPHER_CTX_free(cipher);
  if (!ok) return fail(env, "protectDatagrams: OpenSSL failed");
  return NULL;
}

static napi_value send_datagrams_call(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    return fail(env, "sendDatagrams(fd, data, ends, count, address, port): six arguments");
  }
  int32_t fd, count;
  uint8_t *data;
  int32_t *ends;
  size_t data_length, ends_length;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) return fail(env, "sendDatagrams: fd must be a number >= 0");
  if (!typed_array(env, argv[1], napi_uint8_array, (void **)&data, &data_length)) return fail(env, "sendDatagrams: data must be a Uint8Array");
  if (!typed_array(env, argv[2], napi_int32_array, (void **)&ends, &ends_length)) return fail(env, "sendDatagrams: ends must be an Int32Array");
  if (napi_get_value_int32(env, argv[3], &count) != napi_ok || count < 0 || (size_t)count > ends_length) {
    return fail(env, "sendDatagrams: count must be a number in 0..ends.length");
  }
  struct sockaddr_storage to;
  socklen_t to_length;
  if (!destination_arguments(env, argv + 4, "sendDatagrams", &to, &to_length)) return NULL;
  int32_t previous = 0;
  for (int32_t i = 0; i < count; i++) {
    if (ends[i] < previous || (size_t)ends[i] > data_length) return fail(env, "sendDatagrams: ends must rise within data");
    previous = ends[i];
  }
  return int_result(env, send_datagrams(fd, data, NULL, ends, 1, count, &to, to_length));
}

NAPI_MODULE_INIT() {
  if (!export_function(env, exports, "protectDatagrams", protect_datagrams) ||
      !export_function(env, exports, "sendDatagrams", send_datagrams_call)) {
    return NULL;
  }
  return exports;
}
