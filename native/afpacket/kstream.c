/*
 * The kernel stream's socket (src/sync/table-worker.ts): UDP, bound to the group and port the
 * kernel's master sync daemon on lo sends to and joined to that group on lo. With sync_maxlen 1
 * every connection record comes in a datagram of its own: 5,000 a second at 5,000 new
 * connections/s. Node's dgram reads at most 32 datagrams per event-loop turn (libuv's
 * uv__udp_recvmsg), a recvmsg(2) and a 'message' event each, and the table worker's loop turns only
 * between the slices of a /proc table read (10 ms and more each): the socket filled and the kernel
 * dropped most records while a read ran (bench/results/sync.md, 2026-12-05). Here each readiness
 * event drains what is waiting with recvmmsg(2), KS_VEC datagrams a call, up to KS_TURN_MAX, and
 * hands them to JavaScript in one buffer and one call: per datagram its source IPv4 address (4
 * bytes, network order), length (be16), flags (be16: 1 = truncated to KS_DGRAM) and payload.
 * The receive buffer is set with SO_RCVBUFFORCE (CAP_NET_ADMIN, which lvsd has for IPVS; without
 * it SO_RCVBUF, which the kernel caps at net.core.rmem_max).
 * The handle is an external holding a box, so a second ksclose, or one after the environment's
 * teardown closed the socket, finds it empty: no list shared between the main thread and workers.
 */
#include "addon.h"

#define KS_VEC 64
#define KS_DGRAM 2048
#define KS_TURN_MAX 8192
#define KS_HEAD 8

typedef struct ks {
  uv_poll_t poll;
  int fd;
  int closing;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  struct ks **box;
  unsigned char *out;
  size_t out_cap;
  struct mmsghdr msgs[KS_VEC];
  struct iovec iov[KS_VEC];
  struct sockaddr_in from[KS_VEC];
  unsigned char data[KS_VEC][KS_DGRAM];
} ks_t;

static void ks_env_cleanup(void *arg);

static void ks_freed(uv_handle_t *h) {
  ks_t *s = (ks_t *)h->data;
  if (s->cb) napi_delete_reference(s->env, s->cb);
  if (s->actx) napi_async_destroy(s->env, s->actx);
  free(s->out);
  free(s);
}

static void ks_close(ks_t *s) {
  if (s->closing) return;
  s->closing = 1;
  if (s->box) *s->box = NULL;
  uv_poll_stop(&s->poll);
  close(s->fd);
  napi_remove_env_cleanup_hook(s->env, ks_env_cleanup, s);
  uv_close((uv_handle_t *)&s->poll, ks_freed);
}

static void ks_free_only(uv_handle_t *h) {
  ks_t *s = (ks_t *)h->data;
  free(s->out);
  free(s);
}

/* The environment (a worker thread, the main thread) is going away with the socket open. */
static void ks_env_cleanup(void *arg) {
  ks_t *s = (ks_t *)arg;
  if (s->closing) return;
  s->closing = 1;
  if (s->box) *s->box = NULL;
  uv_poll_stop(&s->poll);
  close(s->fd);
  uv_close((uv_handle_t *)&s->poll, ks_free_only);
}

static void ks_box_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ks_t **box = (ks_t **)data;
  if (*box) (*box)->box = NULL; /* the socket stays open until ksclose or the environment's end */
  free(box);
}

/*
 * Read what is waiting (up to KS_TURN_MAX datagrams) and call cb(null, batch, count) once, or
 * cb(error) on a receive error other than EAGAIN (after the datagrams read before it).
 */
static void ks_read(ks_t *s, int status) {
  size_t used = 0;
  int count = 0, err = status < 0 ? -status : 0;
  while (!err && count < KS_TURN_MAX) {
    for (int i = 0; i < KS_VEC; i++) {
      s->iov[i].iov_base = s->data[i];
      s->iov[i].iov_len = KS_DGRAM;
      memset(&s->msgs[i], 0, sizeof s->msgs[i]);
      s->msgs[i].msg_hdr.msg_iov = &s->iov[i];
      s->msgs[i].msg_hdr.msg_iovlen = 1;
      s->msgs[i].msg_hdr.msg_name = &s->from[i];
      s->msgs[i].msg_hdr.msg_namelen = sizeof s->from[i];
    }
    int n = recvmmsg(s->fd, s->msgs, KS_VEC, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
      break;
    }
    size_t need = used + (size_t)n * (KS_HEAD + KS_DGRAM);
    if (need > s->out_cap) {
      size_t cap = s->out_cap ? s->out_cap : 64 * 1024;
      while (cap < need) cap *= 2;
      unsigned char *grown = (unsigned char *)realloc(s->out, cap);
      if (!grown) {
        err = ENOMEM;
        break;
      }
      s->out = grown;
      s->out_cap = cap;
    }
    for (int i = 0; i < n; i++) {
      size_t len = s->msgs[i].msg_len;
      int trunc = (s->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0 || len > KS_DGRAM;
      if (len > KS_DGRAM) len = KS_DGRAM;
      unsigned char *o = s->out + used;
      memcpy(o, &s->from[i].sin_addr, 4);
      o[4] = (unsigned char)(len >> 8);
      o[5] = (unsigned char)len;
      o[6] = 0;
      o[7] = trunc ? 1 : 0;
      memcpy(o + KS_HEAD, s->data[i], len);
      used += KS_HEAD + len;
    }
    count += n;
    if (n < KS_VEC) break; /* the queue ran empty: the next call would say EAGAIN */
  }
  if (!count && !err) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, self, result;
  napi_get_reference_value(env, s->cb, &cb);
  napi_get_global(env, &self);
  napi_value argv[3];
  size_t argc = 3;
  if (count) {
    napi_get_null(env, &argv[0]);
    argv[1] = buf_copy(env, s->out, used);
    napi_create_int32(env, count, &argv[2]);
  }
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) {
      if (!err || s->closing) break;
      char text[160], code[32];
      snprintf(text, sizeof text, "recvmmsg(kernel stream): %s", strerror(err));
      snprintf(code, sizeof code, "E%d", err);
      napi_value msg, c;
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &c);
      napi_create_error(env, c, msg, &argv[0]);
      argc = 1;
    } else if (!count) {
      continue;
    }
    if (napi_make_callback(env, s->actx, self, cb, argc, argv, &result) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
      break;
    }
  }
  napi_close_handle_scope(env, scope);
}

static void ks_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  ks_read((ks_t *)h->data, status);
}

/*
 * ksopen(group, port, interfaceAddress, rcvbufBytes, callback) -> handle: a non-blocking UDP
 * socket bound to group:port (SO_REUSEADDR), joined to the group on the interface of that IPv4
 * address, its receive buffer rcvbufBytes (SO_RCVBUFFORCE, else SO_RCVBUF), polled on the calling
 * environment's loop: callback(null, batch, count) per readiness event, callback(error) on a
 * receive error. Close with ksclose(handle).
 */
napi_value KsOpen(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char group[64], ifaddr[64];
  size_t gl = 0, il = 0;
  int32_t port, rcvbuf;
  napi_valuetype t = napi_undefined;
  struct in_addr g, ifa;
  if (!args_of(env, info, 5, argv) || napi_get_value_string_utf8(env, argv[0], group, sizeof group, &gl) != napi_ok || !get_int(env, argv[1], &port) || port <= 0 || port > 65535 ||
      napi_get_value_string_utf8(env, argv[2], ifaddr, sizeof ifaddr, &il) != napi_ok || !get_int(env, argv[3], &rcvbuf) || rcvbuf < 0 ||
      napi_typeof(env, argv[4], &t) != napi_ok || t != napi_function || inet_pton(AF_INET, group, &g) != 1 || inet_pton(AF_INET, ifaddr, &ifa) != 1) {
    napi_throw_type_error(env, NULL, "ksopen(group, port, interfaceAddress, rcvbufBytes, callback)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, NULL, "no event loop");
    return NULL;
  }
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_INET, SOCK_DGRAM)", errno);
  int one = 1;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr = g;
  struct ip_mreq mr;
  mr.imr_multiaddr = g;
  mr.imr_interface = ifa;
  const char *what = NULL;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) what = "setsockopt(SO_REUSEADDR)";
  else if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) what = "bind";
  else if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) < 0) what = "setsockopt(IP_ADD_MEMBERSHIP)";
  else if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 && (errno != EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0))
    what = "setsockopt(SO_RCVBUF)";
  if (what) {
    int e = errno;
    close(fd);
    return throw_errno(env, what, e);
  }
  ks_t *s = (ks_t *)calloc(1, sizeof *s);
  ks_t **box = (ks_t **)malloc(sizeof *box);
  if (!s || !box) {
    free(s);
    free(box);
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->env = env;
  napi_value name, handle;
  napi_create_string_utf8(env, "lvsd.kstream", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, argv[4], 1, &s->cb) != napi_ok || napi_async_init(env, NULL, name, &s->actx) != napi_ok) {
    if (s->cb) napi_delete_reference(env, s->cb);
    close(fd);
    free(s);
    free(box);
    napi_throw_error(env, NULL, "cannot keep the callback");
    return NULL;
  }
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r != 0) {
    napi_delete_reference(env, s->cb);
    napi_async_destroy(env, s->actx);
    close(fd);
    free(s);
    free(box);
    return throw_errno(env, "uv_poll_init", -r);
  }
  s->poll.data = s;
  r = uv_poll_start(&s->poll, UV_READABLE, ks_readable);
  if (r != 0) {
    close(fd);
    s->closing = 1;
    free(box);
    uv_close((uv_handle_t *)&s->poll, ks_freed);
    return throw_errno(env, "uv_poll_start", -r);
  }
  *box = s;
  s->box = box;
  napi_add_env_cleanup_hook(env, ks_env_cleanup, s);
  if (napi_create_external(env, box, ks_box_finalize, NULL, &handle) != napi_ok) {
    ks_close(s);
    napi_throw_error(env, NULL, "cannot make the handle");
    return NULL;
  }
  return handle;
}

/* ksclose(handle): stop reading and close the socket (again: nothing). */
napi_value KsClose(napi_env env, napi_callback_info info) {
  napi_value h;
  void *data = NULL;
  napi_valuetype t = napi_undefined;
  if (!args_of(env, info, 1, &h) || napi_typeof(env, h, &t) != napi_ok || t != napi_external || napi_get_value_external(env, h, &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "ksclose(handle)");
    return NULL;
  }
  ks_t **box = (ks_t **)data;
  if (*box) ks_close(*box);
  return NULL;
}

