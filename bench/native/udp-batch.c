/*
 * Bench only, never shipped: how fast a Node process could answer DNS if its UDP socket were
 * read and written in batches (recvmmsg / sendmmsg), which Node's dgram does not offer. It
 * measures the floor of that design for bench/dns-floor.mjs --batched, so that the choice
 * of a native DNS front for the sidecar can be made on a figure rather than a guess.
 *
 *   open(port, onBatch) -> { input, output, lengths }
 *     input:   ArrayBuffer of SLOTS datagrams, SLOT_BYTES each, as received
 *     output:  ArrayBuffer of SLOTS replies, SLOT_BYTES each, written by onBatch
 *     lengths: ArrayBuffer of 2 * SLOTS int32: [i] the length of datagram i, [SLOTS + i]
 *              the length of reply i (0: no reply), set by onBatch
 *   onBatch(count) runs once per recvmmsg that returned datagrams; when it returns, the
 *   replies are sent to each datagram's sender in one sendmmsg.
 *
 * One socket per process, bound to 127.0.0.1; libuv polls it (uv_poll_t) on Node's loop.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define SLOTS 64
#define SLOT_BYTES 1024

static struct {
  int fd;
  uv_poll_t poll;
  napi_env env;
  napi_ref on_batch;
  unsigned char input[SLOTS][SLOT_BYTES];
  unsigned char output[SLOTS][SLOT_BYTES];
  int32_t lengths[2 * SLOTS];
  struct sockaddr_in from[SLOTS];
  struct iovec in_iov[SLOTS];
  struct mmsghdr in_msgs[SLOTS];
  struct iovec out_iov[SLOTS];
  struct mmsghdr out_msgs[SLOTS];
} S = {.fd = -1};

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)handle;
  if (status < 0 || !(events & UV_READABLE)) return;
  for (;;) {
    for (int i = 0; i < SLOTS; i++) {
      S.in_iov[i].iov_base = S.input[i];
      S.in_iov[i].iov_len = SLOT_BYTES;
      memset(&S.in_msgs[i].msg_hdr, 0, sizeof S.in_msgs[i].msg_hdr);
      S.in_msgs[i].msg_hdr.msg_iov = &S.in_iov[i];
      S.in_msgs[i].msg_hdr.msg_iovlen = 1;
      S.in_msgs[i].msg_hdr.msg_name = &S.from[i];
      S.in_msgs[i].msg_hdr.msg_namelen = sizeof S.from[i];
    }
    int n = recvmmsg(S.fd, S.in_msgs, SLOTS, MSG_DONTWAIT, NULL);
    if (n <= 0) return;
    for (int i = 0; i < n; i++) {
      S.lengths[i] = (int32_t)S.in_msgs[i].msg_len;
      S.lengths[SLOTS + i] = 0;
    }
    napi_handle_scope scope;
    napi_open_handle_scope(S.env, &scope);
    napi_value cb, global, argv[1];
    napi_get_reference_value(S.env, S.on_batch, &cb);
    napi_get_global(S.env, &global);
    napi_create_int32(S.env, n, &argv[0]);
    napi_call_function(S.env, global, cb, 1, argv, NULL);
    napi_close_handle_scope(S.env, scope);
    int m = 0;
    for (int i = 0; i < n; i++) {
      int32_t len = S.lengths[SLOTS + i];
      if (len <= 0 || len > SLOT_BYTES) continue;
      S.out_iov[m].iov_base = S.output[i];
      S.out_iov[m].iov_len = (size_t)len;
      memset(&S.out_msgs[m].msg_hdr, 0, sizeof S.out_msgs[m].msg_hdr);
      S.out_msgs[m].msg_hdr.msg_iov = &S.out_iov[m];
      S.out_msgs[m].msg_hdr.msg_iovlen = 1;
      S.out_msgs[m].msg_hdr.msg_name = &S.from[i];
      S.out_msgs[m].msg_hdr.msg_namelen = sizeof S.from[i];
      m++;
    }
    for (int sent = 0; sent < m;) {
      int k = sendmmsg(S.fd, S.out_msgs + sent, (unsigned)(m - sent), MSG_DONTWAIT);
      if (k <= 0) break; /* a full send buffer drops the rest, as a busy resolver would */
      sent += k;
    }
    if (n < SLOTS) return;
  }
}

static napi_value external(napi_env env, void *data, size_t bytes) {
  napi_value ab;
  napi_create_external_arraybuffer(env, data, bytes, NULL, NULL, &ab);
  return ab;
}

static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (S.fd >= 0) {
    napi_throw_error(env, NULL, "udp-batch: one socket per process");
    return NULL;
  }
  int32_t port;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &port) != napi_ok) {
    napi_throw_type_error(env, NULL, "udp-batch: open(port, onBatch)");
    return NULL;
  }
  S.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  if (S.fd < 0 || bind(S.fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  S.env = env;
  napi_create_reference(env, argv[1], 1, &S.on_batch);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &S.poll, S.fd);
  uv_poll_start(&S.poll, UV_READABLE, on_readable);

  napi_value result;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "input", external(env, S.input, sizeof S.input));
  napi_set_named_property(env, result, "output", external(env, S.output, sizeof S.output));
  napi_set_named_property(env, result, "lengths", external(env, S.lengths, sizeof S.lengths));
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn, slots, slot_bytes;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, open_socket, NULL, &fn);
  napi_set_named_property(env, exports, "open", fn);
  napi_create_int32(env, SLOTS, &slots);
  napi_set_named_property(env, exports, "SLOTS", slots);
  napi_create_int32(env, SLOT_BYTES, &slot_bytes);
  napi_set_named_property(env, exports, "SLOT_BYTES", slot_bytes);
  return exports;
}
