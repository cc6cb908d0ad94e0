/*
 * The sidecar's DNS socket, read and written in batches (recvmmsg / sendmmsg), which Node's
 * dgram does not offer. It only moves bytes: every parse and decision stays in TypeScript
 * (src/sidecar/dns/batched-udp.ts). Without this addon the sidecar uses dgram, as before.
 *
 *   open(host, port, slots, inBytes, outBytes, input, output, meta, onBatch)
 *       -> [handle, boundPort]
 *     input:  ArrayBuffer, slots * inBytes: each datagram as received (its first inBytes bytes)
 *     output: ArrayBuffer, slots * outBytes: reply i, written by onBatch
 *     meta:   ArrayBuffer of 4 * slots uint32: [4i] the datagram's real length (MSG_TRUNC),
 *             [4i+1] its sender's IPv4 address (host order), [4i+2] the sender's port,
 *             [4i+3] the length of reply i, 0 for none (set by onBatch)
 *     onBatch(count) runs once per recvmmsg that returned datagrams, as a callback from the
 *     event loop (microtasks and ticks run after it); when it returns, the replies it wrote
 *     leave in one sendmmsg, each to its datagram's sender.
 *   send(handle, buffer, address, port) -> boolean: one datagram now (a reply answered later);
 *     false when the socket's buffer is full or the send failed.
 *   close(handle): stops reading and closes the socket once libuv lets go of it.
 *
 * The buffers are JavaScript's, held by references until close; the socket is polled on
 * Node's own loop (uv_poll_t). Any number of sockets per process.
 */
#define _GNU_SOURCE /* recvmmsg, sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Batches read in one wake-up before other I/O gets its turn (libuv polls level-triggered). */
#define MAX_BATCHES_PER_WAKEUP 8

typedef struct {
  int fd;
  int closing;
  uv_poll_t poll;
  napi_env env;
  napi_ref on_batch, input_ref, output_ref, meta_ref, resource;
  napi_async_context async;
  uint32_t slots, in_bytes, out_bytes;
  unsigned char *input, *output;
  uint32_t *meta;
  struct sockaddr_in *from;
  struct iovec *in_iov, *out_iov;
  struct mmsghdr *in_msgs, *out_msgs;
} socket_t;

static void free_socket(socket_t *s) {
  free(s->from);
  free(s->in_iov);
  free(s->out_iov);
  free(s->in_msgs);
  free(s->out_msgs);
  free(s);
}

/* Lets go of everything JavaScript gave; the buffers are not touched again. */
static void close_refs(napi_env env, socket_t *s) {
  s->closing = 1;
  napi_async_destroy(env, s->async);
  napi_delete_reference(env, s->on_batch);
  napi_delete_reference(env, s->resource);
  napi_delete_reference(env, s->input_ref);
  napi_delete_reference(env, s->output_ref);
  napi_delete_reference(env, s->meta_ref);
  s->input = s->output = NULL;
  s->meta = NULL;
}

static void on_closed(uv_handle_t *handle) {
  socket_t *s = handle->data;
  close(s->fd);
  free_socket(s);
}

/* Hands the pending exception to Node's uncaughtException handling, as any callback's would be. */
static void rethrow(napi_env env) {
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
}

static void send_replies(socket_t *s, int n) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    uint32_t len = s->meta[4 * i + 3];
    if (len == 0 || len > s->out_bytes) continue;
    s->out_iov[m].iov_base = s->output + (size_t)i * s->out_bytes;
    s->out_iov[m].iov_len = len;
    memset(&s->out_msgs[m].msg_hdr, 0, sizeof s->out_msgs[m].msg_hdr);
    s->out_msgs[m].msg_hdr.msg_iov = &s->out_iov[m];
    s->out_msgs[m].msg_hdr.msg_iovlen = 1;
    s->out_msgs[m].msg_hdr.msg_name = &s->from[i];
    s->out_msgs[m].msg_hdr.msg_namelen = sizeof s->from[i];
    m++;
  }
  for (int sent = 0; sent < m;) {
    int k = sendmmsg(s->fd, s->out_msgs + sent, (unsigned)(m - sent), MSG_DONTWAIT);
    if (k > 0) {
      sent += k;
    } else if (k < 0 && errno == EINTR) {
      continue;
    } else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      sent += 1; /* this one failed (its address, say): skip it, send the rest */
    } else {
      break; /* a full send buffer drops the rest, as a busy resolver would; the clients ask again */
    }
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  socket_t *s = handle->data;
  if (status < 0 || !(events & UV_READABLE)) return;
  for (int batch = 0; batch < MAX_BATCHES_PER_WAKEUP && !s->closing; batch++) {
    for (uint32_t i = 0; i < s->slots; i++) {
      s->in_iov[i].iov_base = s->input + (size_t)i * s->in_bytes;
      s->in_iov[i].iov_len = s->in_bytes;
      memset(&s->in_msgs[i].msg_hdr, 0, sizeof s->in_msgs[i].msg_hdr);
      s->in_msgs[i].msg_hdr.msg_iov = &s->in_iov[i];
      s->in_msgs[i].msg_hdr.msg_iovlen = 1;
      s->in_msgs[i].msg_hdr.msg_name = &s->from[i];
      s->in_msgs[i].msg_hdr.msg_namelen = sizeof s->from[i];
    }
    /* MSG_TRUNC: msg_len is the datagram's real length, so an oversized one is seen as such. */
    int n = recvmmsg(s->fd, s->in_msgs, s->slots, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n <= 0) return; /* EAGAIN: drained; any other error is reported once and cleared */
    for (int i = 0; i < n; i++) {
      s->meta[4 * i] = s->in_msgs[i].msg_len;
      s->meta[4 * i + 1] = ntohl(s->from[i].sin_addr.s_addr);
      s->meta[4 * i + 2] = ntohs(s->from[i].sin_port);
      s->meta[4 * i + 3] = 0;
    }
    napi_env env = s->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value cb, resource, argv[1];
    napi_get_reference_value(env, s->on_batch, &cb);
    napi_get_reference_value(env, s->resource, &resource);
    napi_create_int32(env, n, &argv[0]);
    if (napi_make_callback(env, s->async, resource, cb, 1, argv, NULL) == napi_pending_exception) rethrow(env);
    napi_close_handle_scope(env, scope);
    if (s->closing) return; /* closed from inside onBatch: the buffers may be gone */
    send_replies(s, n);
    if ((uint32_t)n < s->slots) return;
  }
}

static napi_value throw_errno(napi_env env, int err, const char *what) {
  const char *code = err == EADDRINUSE ? "EADDRINUSE" : err == EACCES ? "EACCES" : err == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "EUDPBATCH";
  char message[256];
  snprintf(message, sizeof message, "udp-batch %s: %s", what, strerror(err));
  napi_throw_error(env, code, message);
  return NULL;
}

static int arraybuffer(napi_env env, napi_value value, size_t need, void **data) {
  size_t length = 0;
  bool is = false;
  napi_is_arraybuffer(env, value, &is);
  if (!is || napi_get_arraybuffer_info(env, value, data, &length) != napi_ok) return 0;
  return length >= need;
}

static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char host[64];
  size_t host_len = 0;
  uint32_t port, slots, in_bytes, out_bytes;
  napi_valuetype cb_type = napi_undefined;
  if (argc < 9 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok ||
      napi_get_value_uint32(env, argv[1], &port) != napi_ok || napi_get_value_uint32(env, argv[2], &slots) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &in_bytes) != napi_ok || napi_get_value_uint32(env, argv[4], &out_bytes) != napi_ok ||
      napi_typeof(env, argv[8], &cb_type) != napi_ok || cb_type != napi_function || port > 65535 || slots == 0 || slots > 1024 ||
      in_bytes == 0 || out_bytes == 0) {
    napi_throw_type_error(env, NULL, "udp-batch: open(host, port, slots, inBytes, outBytes, input, output, meta, onBatch)");
    return NULL;
  }
  void *input, *output, *meta;
  if (!arraybuffer(env, argv[5], (size_t)slots * in_bytes, &input) || !arraybuffer(env, argv[6], (size_t)slots * out_bytes, &output) ||
      !arraybuffer(env, argv[7], (size_t)slots * 16, &meta)) {
    napi_throw_range_error(env, NULL, "udp-batch: input, output or meta is not an ArrayBuffer of the size slots asks for");
    return NULL;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "udp-batch: host is not an IPv4 literal");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  socklen_t sa_len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &sa_len);

  socket_t *s = calloc(1, sizeof *s);
  if (s != NULL) {
    s->from = calloc(slots, sizeof *s->from);
    s->in_iov = calloc(slots, sizeof *s->in_iov);
    s->out_iov = calloc(slots, sizeof *s->out_iov);
    s->in_msgs = calloc(slots, sizeof *s->in_msgs);
    s->out_msgs = calloc(slots, sizeof *s->out_msgs);
  }
  if (s == NULL || !s->from || !s->in_iov || !s->out_iov || !s->in_msgs || !s->out_msgs) {
    close(fd);
    if (s != NULL) free_socket(s);
    napi_throw_error(env, NULL, "udp-batch: out of memory");
    return NULL;
  }
  s->fd = fd;
  s->env = env;
  s->slots = slots;
  s->in_bytes = in_bytes;
  s->out_bytes = out_bytes;
  s->input = input;
  s->output = output;
  s->meta = meta;
  napi_create_reference(env, argv[5], 1, &s->input_ref);
  napi_create_reference(env, argv[6], 1, &s->output_ref);
  napi_create_reference(env, argv[7], 1, &s->meta_ref);
  napi_create_reference(env, argv[8], 1, &s->on_batch);
  napi_value resource, name;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &s->resource);
  napi_create_string_utf8(env, "HangarUdpBatch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, resource, name, &s->async);

  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  int uv_err = uv_poll_init(loop, &s->poll, fd);
  if (uv_err == 0) {
    s->poll.data = s;
    uv_err = uv_poll_start(&s->poll, UV_READABLE, on_readable);
    if (uv_err != 0) {
      /* Initialised, so libuv must let go of it first: the close callback frees the rest. */
      close_refs(env, s);
      uv_close((uv_handle_t *)&s->poll, on_closed);
    }
  } else {
    close_refs(env, s);
    close(fd);
    free_socket(s);
  }
  if (uv_err != 0) {
    napi_throw_error(env, NULL, uv_strerror(uv_err));
    return NULL;
  }

  napi_value result, handle, bound;
  napi_create_array_with_length(env, 2, &result);
  napi_create_external(env, s, NULL, NULL, &handle);
  napi_create_uint32(env, ntohs(sa.sin_port), &bound);
  napi_set_element(env, result, 0, handle);
  napi_set_element(env, result, 1, bound);
  return result;
}

static socket_t *handle_of(napi_env env, napi_value value) {
  void *data = NULL;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external || napi_get_value_external(env, value, &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "udp-batch: not a handle");
    return NULL;
  }
  return data;
}

static napi_value send_one(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  socket_t *s = argc == 4 ? handle_of(env, argv[0]) : NULL;
  if (s == NULL) return NULL;
  void *data;
  size_t length;
  uint32_t address, port;
  if (napi_get_buffer_info(env, argv[1], &data, &length) != napi_ok || napi_get_value_uint32(env, argv[2], &address) != napi_ok ||
      napi_get_value_uint32(env, argv[3], &port) != napi_ok || port > 65535) {
    napi_throw_type_error(env, NULL, "udp-batch: send(handle, buffer, address, port)");
    return NULL;
  }
  bool ok = false;
  if (!s->closing) {
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = {.s_addr = htonl(address)}};
    ssize_t sent;
    do sent = sendto(s->fd, data, length, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
    while (sent < 0 && errno == EINTR);
    ok = sent == (ssize_t)length;
  }
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  socket_t *s = argc == 1 ? handle_of(env, argv[0]) : NULL;
  if (s == NULL || s->closing) return NULL;
  uv_poll_stop(&s->poll);
  close_refs(env, s);
  uv_close((uv_handle_t *)&s->poll, on_closed);
  return NULL;
}

NAPI_MODULE_INIT() {
  const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"open", open_socket}, {"send", send_one}, {"close", close_socket}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, fns[i].name, fn);
  }
  return exports;
}
