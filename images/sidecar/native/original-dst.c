/*
 * The original destination of a connection or datagram that the sidecar's netns redirected
 * to one of its catch-all ports (nft `redirect`). Node has no getsockopt, so this tiny N-API
 * addon does the two calls it needs; neither needs a capability.
 *
 *   originalDst(fd)            -> { address, port }  getsockopt(SOL_IP, SO_ORIGINAL_DST), TCP
 *   udpOpen(host, port)        -> fd                 a UDP socket with IP_RECVORIGDSTADDR
 *   udpReceive(fd, maxBytes)   -> { from, fromPort, address, port, bytes } | null (nothing waiting)
 *   udpClose(fd)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <node_api.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>

#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IP_ORIGDSTADDR
#define IP_ORIGDSTADDR 20
#endif

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  char code[32];
  snprintf(code, sizeof code, "ERRNO_%d", errno);
  napi_throw_error(env, code, msg);
  return NULL;
}

static napi_value address_object(napi_env env, const struct sockaddr_in *sa, const char *addr_key, const char *port_key, napi_value obj) {
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &sa->sin_addr, text, sizeof text);
  napi_value a, p;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &a);
  napi_create_uint32(env, ntohs(sa->sin_port), &p);
  napi_set_named_property(env, obj, addr_key, a);
  napi_set_named_property(env, obj, port_key, p);
  return obj;
}

static int int_arg(napi_env env, napi_callback_info info, size_t index, int32_t *out) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (index >= argc) return 0;
  return napi_get_value_int32(env, argv[index], out) == napi_ok;
}

static napi_value original_dst(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, 0, &fd)) {
    napi_throw_type_error(env, NULL, "originalDst(fd): fd must be a number");
    return NULL;
  }
  struct sockaddr_in sa;
  socklen_t len = sizeof sa;
  memset(&sa, 0, sizeof sa);
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0) return throw_errno(env, "getsockopt(SO_ORIGINAL_DST)");
  napi_value obj;
  napi_create_object(env, &obj);
  return address_object(env, &sa, "address", "port", obj);
}

static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char host[INET_ADDRSTRLEN + 1];
  size_t host_len = 0;
  int32_t port;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_len) != napi_ok || napi_get_value_int32(env, argv[1], &port) != napi_ok) {
    napi_throw_type_error(env, NULL, "udpOpen(host, port): host must be an IPv4 string and port a number");
    return NULL;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    napi_throw_type_error(env, NULL, "udpOpen(host, port): host is not an IPv4 address");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket");
  int on = 1;
  if (setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &on, sizeof on) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return throw_errno(env, "udpOpen");
  }
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value udp_receive(napi_env env, napi_callback_info info) {
  int32_t fd, max;
  if (!int_arg(env, info, 0, &fd) || !int_arg(env, info, 1, &max) || max < 0) {
    napi_throw_type_error(env, NULL, "udpReceive(fd, maxBytes): both must be numbers");
    return NULL;
  }
  struct sockaddr_in from;
  char control[64];
  char buf[2048];
  struct iovec iov = {buf, sizeof buf};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &from;
  msg.msg_namelen = sizeof from;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);
  napi_value out;
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      napi_get_null(env, &out);
      return out;
    }
    return throw_errno(env, "recvmsg");
  }
  napi_create_object(env, &out);
  address_object(env, &from, "from", "fromPort", out);
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) {
      struct sockaddr_in dst;
      memcpy(&dst, CMSG_DATA(c), sizeof dst);
      address_object(env, &dst, "address", "port", out);
    }
  }
  napi_value size, head;
  napi_create_double(env, (double)n, &size);
  napi_set_named_property(env, out, "size", size);
  size_t keep = (size_t)n < sizeof buf ? (size_t)n : sizeof buf;
  if (keep > (size_t)max) keep = (size_t)max;
  void *data;
  napi_create_buffer_copy(env, keep, buf, &data, &head);
  napi_set_named_property(env, out, "head", head);
  return out;
}

static napi_value udp_close(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (int_arg(env, info, 0, &fd)) close(fd);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"originalDst", NULL, original_dst, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpOpen", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpReceive", NULL, udp_receive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpClose", NULL, udp_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
