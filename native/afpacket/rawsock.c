/*
 * The raw IP sockets VRRP runs on (protocol 112), read with recvmsg(2): an IPv6 raw
 * socket hands over neither the IPv6 header nor, through recvfrom(), any ancillary data, yet the hop
 * limit RFC 5798 §7.1 requires to be 255 (IPV6_RECVHOPLIMIT) and the destination address and arrival
 * interface (IPV6_RECVPKTINFO) only come as control messages (RFC 3542 §6); for both families the
 * kernel's receive timestamp (SO_TIMESTAMPNS) dates each advert by its arrival, which is where the
 * Master_Down_Timer starts. Readiness comes from libuv (uv_poll on the loop of the calling
 * environment); datagrams are handed to a JavaScript callback on the main thread, at most RX_BATCH
 * per readiness event, or read synchronously on request (rawpoll) when a deadline must first see
 * what is waiting.
 */
#include "addon.h"

#define RX_EARLY_MAX 1024
/* A whole IPv4 datagram (the header included, raw(7)) or IPv6 payload: 65,535 bytes at most. VRRP
   adverts are ~50 bytes to ~4 KB (255 IPv6 addresses), so their reads are unchanged (the payload is
   copied at its own length); a larger read size lets bench/support/sync-trace.ts read lvsd's joined
   hand-overs on lo (up to 32 KB, src/sync/adapters.ts) whole instead of truncated at 4,096 bytes. */
#define RX_BUF 65536

static const char *const early_reason[EARLY_N] = {"bad_ttl", "bad_checksum"};

static rx_t *rx_list = NULL;

/* Reads in progress per descriptor number (the last slot for numbers beyond RX_FD_MAX), for the
   takeover thread: while one is, a datagram has left the socket but its callback (which re-arms the
   thread when it is the master's advert) has not returned. */
#define RX_FD_MAX 4096
static int rx_busy[RX_FD_MAX + 1];
int *rx_busy_of(int fd) {
  return &rx_busy[fd >= 0 && fd < RX_FD_MAX ? fd : RX_FD_MAX];
}

rx_t *rx_find(int fd) {
  for (rx_t *s = rx_list; s; s = s->next)
    if (s->fd == fd && !s->closing) return s;
  return NULL;
}

static void rx_unlink(rx_t *s) {
  for (rx_t **pp = &rx_list; *pp; pp = &(*pp)->next) {
    if (*pp == s) {
      *pp = s->next;
      return;
    }
  }
}

static void rx_env_cleanup(void *arg);

static void rx_freed(uv_handle_t *h) {
  rx_t *s = (rx_t *)h->data;
  if (s->cb) napi_delete_reference(s->env, s->cb);
  if (s->actx) napi_async_destroy(s->env, s->actx);
  free(s);
}

/* Stop polling, close the descriptor, release the handle (freed in rx_freed). */
static void rx_close(rx_t *s) {
  if (s->closing) return;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  rx_unlink(s);
  napi_remove_env_cleanup_hook(s->env, rx_env_cleanup, s);
  uv_close((uv_handle_t *)&s->poll, rx_freed);
}

static void rx_free_only(uv_handle_t *h) {
  free(h->data);
}

/* The environment (main or worker) is going away with the socket still open. */
static void rx_env_cleanup(void *arg) {
  rx_t *s = (rx_t *)arg;
  if (s->closing) return;
  s->closing = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  rx_unlink(s);
  uv_close((uv_handle_t *)&s->poll, rx_free_only);
}

/* RFC 1071 one's complement sum of 16-bit words, not folded. */
static uint32_t csum_add(uint32_t sum, const unsigned char *b, size_t len) {
  size_t i = 0;
  for (; i + 1 < len; i += 2) sum += (uint32_t)(b[i] << 8 | b[i + 1]);
  if (i < len) sum += (uint32_t)(b[i] << 8);
  return sum;
}

/*
 * The cheap checks of an IPv4 VRRP datagram (IPv4 header first, as raw(7) delivers it), done before
 * anything is handed to JavaScript: TTL 255 (RFC 5798 §7.1) and the VRRP checksum (v2: the message,
 * RFC 3768 §5.3.8; v3: with the RFC 768 pseudo-header, RFC 5798 §5.2.8). Under a flood of forged
 * frames each rejection then costs a recvmsg and a checksum instead of buffers, a callback and the
 * decoder: the backup keeps draining its socket faster than the flood fills it, so the master's
 * adverts are not lost with it (issue 17). Returns the EARLY_* reason, or -1: deliver (everything
 * else, malformed headers included, is the TypeScript decoder's to judge and count).
 */
static int vrrp_early_reject(const unsigned char *d, size_t n) {
  if (n < 20 || (d[0] >> 4) != 4) return -1;
  size_t ihl = (size_t)(d[0] & 0x0f) * 4, tot = (size_t)(d[2] << 8 | d[3]);
  if (ihl < 20 || tot > n || tot < ihl + 8 || d[9] != 112) return -1;
  if (d[8] != 255) return EARLY_BAD_TTL;
  const unsigned char *v = d + ihl;
  size_t len = tot - ihl;
  int version = v[0] >> 4;
  if (version != 2 && version != 3) return -1;
  uint32_t sum = csum_add(0, v, len);
  if (version == 3) {
    sum = csum_add(sum, d + 12, 8); /* source and destination addresses */
    sum += 112 + (uint32_t)len;
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  /* The field included in the sum: a right checksum sums to 0xffff. */
  return sum == 0xffff ? -1 : EARLY_BAD_CHECKSUM;
}

/*
 * Call the socket's callback: from the loop (sync = 0) through napi_make_callback, from rxpoll
 * (sync = 1, inside a JavaScript call) with napi_call_function. Returns 0, or when the callback
 * threw: -1 when sync (the exception propagates), 1 otherwise (reported as fatal; stop reading).
 */
static int rx_call(rx_t *s, napi_value recv, napi_value cb, size_t argc, napi_value *argv, int sync) {
  napi_value result;
  napi_status st = sync ? napi_call_function(s->env, recv, cb, argc, argv, &result)
                        : napi_make_callback(s->env, s->actx, recv, cb, argc, argv, &result);
  if (st != napi_pending_exception) return 0;
  if (sync) return -1;
  napi_value exc;
  napi_get_and_clear_last_exception(s->env, &exc);
  napi_fatal_exception(s->env, exc);
  return 1;
}

/* Report the early rejections counted so far as cb(null, null, {reason: count, ...}) and reset them (rx_call's result). */
static int rx_report_early(rx_t *s, napi_value recv, napi_value cb, int sync) {
  napi_env env = s->env;
  int any = 0;
  for (int r = 0; r < EARLY_N; r++) any |= s->early[r] != 0;
  if (!any) return 0;
  napi_value argv[3];
  napi_get_null(env, &argv[0]);
  napi_get_null(env, &argv[1]);
  napi_create_object(env, &argv[2]);
  for (int r = 0; r < EARLY_N; r++) {
    if (!s->early[r]) continue;
    napi_value c;
    napi_create_uint32(env, s->early[r], &c);
    napi_set_named_property(env, argv[2], early_reason[r], c);
    s->early[r] = 0;
  }
  return rx_call(s, recv, cb, 3, argv, sync);
}

/*
 * Read up to RX_BATCH waiting datagrams, calling for each
 *   cb(null, payload, src, dst | null, hopLimit | -1, ifindex, truncated, rxMonoMs | -1)
 * or, on a receive error other than EAGAIN, cb(error) once; on an IPv4 VRRP socket, datagrams
 * vrrp_early_reject refuses are only counted, and reported at the end of the batch as
 * cb(null, null, {bad_ttl?: n, bad_checksum?: n}). IPv4 payloads start with the IPv4
 * header (raw(7)); IPv6 ones carry no header, hence hop limit and destination from control data.
 * rxMonoMs is when the kernel received the datagram (SO_TIMESTAMPNS, taken when the packet entered
 * the stack), on CLOCK_MONOTONIC in ms (-1: unknown), so the caller can date the event by its
 * arrival rather than by the moment a busy or just-woken process got to it. (It was an age until
 * session 9; the caller's clock was read only after the buffers were built and the callback
 * entered, which dated adverts late: dated here, a new master's GARP went out ~0.2 ms sooner on
 * the failover bench, median of 8.)
 * The callback runs through rx_call (from the loop, or synchronously from rxpoll).
 * Returns the number of datagrams delivered, or -1 when the callback threw (sync).
 */
static int rx_read_batch(rx_t *s, int status, int sync);
static int rx_read(rx_t *s, int status, int sync) {
  int *busy = rx_busy_of(s->fd);
  __atomic_add_fetch(busy, 1, __ATOMIC_SEQ_CST);
  int n = rx_read_batch(s, status, sync);
  __atomic_sub_fetch(busy, 1, __ATOMIC_SEQ_CST);
  return n;
}

static int rx_read_batch(rx_t *s, int status, int sync) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  napi_value cb, recv;
  napi_get_reference_value(env, s->cb, &cb);
  napi_get_global(env, &recv); /* napi_make_callback needs an object receiver */
  int delivered = 0;
  /* Early rejections do not count against RX_BATCH (they cost no JavaScript), up to RX_EARLY_MAX
     reads per readiness event, so a flood is drained in large batches without starving the loop. */
  for (int i = 0, reads = 0; i < RX_BATCH && reads < RX_EARLY_MAX && !s->closing; i++, reads++) {
    unsigned char data[RX_BUF];
    union {
      struct cmsghdr align;
      unsigned char b[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(struct timespec)) + 64];
    } ctl;
    struct sockaddr_storage from;
    struct iovec iov = {data, sizeof data};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_name = &from;
    m.msg_namelen = sizeof from;
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.b;
    m.msg_controllen = sizeof ctl.b;
    ssize_t n = status < 0 ? -1 : recvmsg(s->fd, &m, MSG_DONTWAIT);
    napi_value argv[8];
    size_t argc;
    if (n < 0) {
      int e = status < 0 ? -status : errno;
      if (status >= 0 && e == EINTR) continue;
      if (status >= 0 && (e == EAGAIN || e == EWOULDBLOCK)) break;
      napi_value msg, code;
      char text[160], ctext[32];
      snprintf(text, sizeof text, "recvmsg(raw IPv%d): %s", s->family, strerror(e));
      snprintf(ctext, sizeof ctext, "E%d", e);
      napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
      napi_create_string_utf8(env, ctext, NAPI_AUTO_LENGTH, &code);
      napi_create_error(env, code, msg, &argv[0]);
      argc = 1;
      i = RX_BATCH; /* report once, then wait for the next readiness event */
    } else {
      int early = s->vrrp_check && !(m.msg_flags & MSG_TRUNC) ? vrrp_early_reject(data, (size_t)n) : -1;
      if (early >= 0) {
        s->early[early]++;
        i--;
        continue;
      }
      int hops = -1, ifindex = 0, have_dst = 0;
      unsigned char dst[16];
      double rx_mono = -1;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
          /* The stamp is CLOCK_REALTIME; moved to CLOCK_MONOTONIC by its age, read now. */
          struct timespec ts, now, mono;
          memcpy(&ts, CMSG_DATA(c), sizeof ts);
          clock_gettime(CLOCK_REALTIME, &now);
          clock_gettime(CLOCK_MONOTONIC, &mono);
          double age_ms = ts_ms(&now) - ts_ms(&ts);
          if (age_ms >= 0) rx_mono = ts_ms(&mono) - age_ms;
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
          memcpy(&hops, CMSG_DATA(c), sizeof(int));
        } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
          struct in6_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          memcpy(dst, &pi.ipi6_addr, 16);
          ifindex = (int)pi.ipi6_ifindex;
          have_dst = 16;
        } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO && c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
          struct in_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          memcpy(dst, &pi.ipi_addr, 4);
          ifindex = pi.ipi_ifindex;
          have_dst = 4;
        }
      }
      napi_get_null(env, &argv[0]);
      argv[1] = buf_copy(env, data, (size_t)n);
      if (from.ss_family == AF_INET6) argv[2] = buf_copy(env, &((struct sockaddr_in6 *)&from)->sin6_addr, 16);
      else argv[2] = buf_copy(env, &((struct sockaddr_in *)&from)->sin_addr, 4);
      if (have_dst) argv[3] = buf_copy(env, dst, (size_t)have_dst);
      else napi_get_null(env, &argv[3]);
      napi_create_int32(env, hops, &argv[4]);
      napi_create_int32(env, ifindex, &argv[5]);
      napi_get_boolean(env, (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0, &argv[6]);
      napi_create_double(env, rx_mono, &argv[7]);
      argc = 8;
      delivered++;
    }
    int c = rx_call(s, recv, cb, argc, argv, sync);
    if (c < 0) {
      napi_close_handle_scope(env, scope);
      return -1;
    }
    if (c > 0) break;
  }
  if (!s->closing && rx_report_early(s, recv, cb, sync) < 0) delivered = -1;
  napi_close_handle_scope(env, scope);
  return delivered;
}

static void rx_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  rx_t *s = (rx_t *)h->data;
  if (s->family == 0) nlw_read(s, status);
  else rx_read(s, status, 0);
}

/*
 * Keep `fd` (non-blocking, owned from here on) polled on the loop, calling `cbv` per datagram
 * (family 4 / 6) or per address notification (family 0, see nlwatch). Returns the fd as a number.
 */
napi_value rx_start(napi_env env, int fd, int family, napi_value cbv) {
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    close(fd);
    napi_throw_error(env, NULL, "no event loop");
    return NULL;
  }
  rx_t *s = (rx_t *)calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->family = family;
  s->env = env;
  napi_value name;
  napi_create_string_utf8(env, "lvsd.rawip", NAPI_AUTO_LENGTH, &name);
  if (napi_create_reference(env, cbv, 1, &s->cb) != napi_ok ||
      napi_async_init(env, NULL, name, &s->actx) != napi_ok) {
    if (s->cb) napi_delete_reference(env, s->cb);
    close(fd);
    free(s);
    napi_throw_error(env, NULL, "cannot keep the callback");
    return NULL;
  }
  int r = uv_poll_init(loop, &s->poll, fd);
  if (r == 0) {
    s->poll.data = s;
    r = uv_poll_start(&s->poll, UV_READABLE, rx_readable);
    if (r != 0) {
      close(fd);
      s->closing = 1;
      uv_close((uv_handle_t *)&s->poll, rx_freed);
      return throw_errno(env, "uv_poll_start", -r);
    }
  } else {
    napi_delete_reference(env, s->cb);
    napi_async_destroy(env, s->actx);
    close(fd);
    free(s);
    return throw_errno(env, "uv_poll_init", -r);
  }
  napi_add_env_cleanup_hook(env, rx_env_cleanup, s);
  s->next = rx_list;
  rx_list = s;
  napi_value out;
  napi_create_int32(env, fd, &out);
  return out;
}

/*
 * rawopen(family 4|6, protocol, callback) -> fd: AF_INET/AF_INET6 SOCK_RAW, non-blocking, polled on
 * the loop, with receive timestamps; IPv6 also with hop limit and packet info, IPv4 with packet info.
 */
napi_value RawOpen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int32_t family, proto;
  napi_valuetype t = napi_undefined;
  if (!args_of(env, info, 3, argv) || !get_int(env, argv[0], &family) || (family != 4 && family != 6) || !get_int(env, argv[1], &proto) || proto <= 0 || proto > 255 ||
      napi_typeof(env, argv[2], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "rawopen(family 4|6, protocol, callback)");
    return NULL;
  }
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  if (fd < 0) return throw_errno(env, family == 6 ? "socket(AF_INET6, SOCK_RAW)" : "socket(AF_INET, SOCK_RAW)", errno);
  int one = 1;
  int bad = setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0;
  if (!bad && family == 6)
    bad = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) < 0 || setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0;
  if (!bad && family == 4) bad = setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0;
  if (bad) {
    int e = errno;
    close(fd);
    return throw_errno(env, "setsockopt(SO_TIMESTAMPNS / HOPLIMIT / PKTINFO)", e);
  }
  napi_value r = rx_start(env, fd, family, argv[2]);
  rx_t *s = r ? rx_find(fd) : NULL;
  if (s) s->vrrp_check = family == 4 && proto == 112;
  return r;
}

/* The socket named by argument 0; `raw_only`: a raw IP socket, not an nlwatch one. Throws when not. */
static rx_t *rx_arg(napi_env env, napi_callback_info info, napi_value *argv, size_t *argc, const char *usage, int raw_only) {
  napi_get_cb_info(env, info, argc, argv, NULL, NULL);
  int32_t fd;
  if (*argc < 1 || !get_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  rx_t *s = rx_find(fd);
  if (!s || (raw_only && s->family == 0)) {
    napi_throw_range_error(env, NULL, "not a raw IP socket opened by rawopen");
    return NULL;
  }
  return s;
}

/*
 * rawpoll(fd) -> count: read the datagrams waiting now, synchronously, through the socket's callback.
 * A timer deadline checks for waiting adverts this way instead of waiting for the loop's poll phase.
 */
napi_value RawPoll(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  rx_t *s = rx_arg(env, info, argv, &argc, "rawpoll(fd)", 1);
  if (!s) return NULL;
  int n = rx_read(s, 0, 1);
  if (n < 0) return NULL; /* the callback's exception propagates */
  napi_value r;
  napi_create_int32(env, n, &r);
  return r;
}

/* setsockopt(fd, level, option, buffer): any option of a raw socket opened here. */
napi_value SetSockOpt(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  rx_t *s = rx_arg(env, info, argv, &argc, "setsockopt(fd, level, option, buffer)", 0);
  if (!s) return NULL;
  int32_t level, opt;
  void *data;
  size_t len;
  if (argc < 4 || !get_int(env, argv[1], &level) || !get_int(env, argv[2], &opt) || !buf_arg(env, argv[3], &data, &len)) {
    napi_throw_type_error(env, NULL, "setsockopt(fd, level, option, buffer)");
    return NULL;
  }
  if (setsockopt(s->fd, level, opt, data, (socklen_t)len) < 0) {
    char what[64];
    snprintf(what, sizeof what, "setsockopt(%d, %d)", level, opt);
    return throw_errno(env, what, errno);
  }
  return NULL;
}

/* rawsend(fd, dst: Buffer(4|16), scopeId, payload) -> bytes. Non-blocking; errors are thrown. */
/* The destination of a raw socket of ours: dst is 4 or 16 bytes (the socket's family). Its length. */
static socklen_t raw_dest(int family, const void *dst, uint32_t scope, struct sockaddr_storage *to) {
  memset(to, 0, sizeof *to);
  if (family == 6) {
    struct sockaddr_in6 *t6 = (struct sockaddr_in6 *)to;
    t6->sin6_family = AF_INET6;
    memcpy(&t6->sin6_addr, dst, 16);
    t6->sin6_scope_id = scope;
    return sizeof *t6;
  }
  struct sockaddr_in *t4 = (struct sockaddr_in *)to;
  t4->sin_family = AF_INET;
  memcpy(&t4->sin_addr, dst, 4);
  return sizeof *t4;
}

/* sendto() on a raw socket of ours. Bytes sent or -errno. */
ssize_t raw_sendto(int fd, int family, const void *dst, uint32_t scope, const void *data, size_t len) {
  struct sockaddr_storage to;
  socklen_t tolen = raw_dest(family, dst, scope, &to);
  ssize_t n = sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&to, tolen);
  return n < 0 ? -errno : n;
}

napi_value RawSend(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  rx_t *s = rx_arg(env, info, argv, &argc, "rawsend(fd, dst, scopeId, buffer)", 1);
  if (!s) return NULL;
  int32_t scope;
  void *dst, *data;
  size_t dlen, len;
  if (argc < 4 || !get_int(env, argv[2], &scope) || !buf_arg(env, argv[1], &dst, &dlen) || dlen != (s->family == 6 ? 16u : 4u) ||
      !buf_arg(env, argv[3], &data, &len)) {
    napi_throw_type_error(env, NULL, "rawsend(fd, dst (4 or 16 bytes, the socket's family), scopeId, buffer)");
    return NULL;
  }
  ssize_t n = raw_sendto(s->fd, s->family, dst, (uint32_t)scope, data, len);
  if (n < 0) return throw_errno(env, s->family == 6 ? "sendto(IPv6 raw)" : "sendto(IPv4 raw)", (int)-n);
  napi_value r;
  napi_create_int32(env, (int32_t)n, &r);
  return r;
}

/*
 * rawsendmany(fd, dst, scopeId, buffer, size) -> datagrams sent. The buffer holds back-to-back
 * payloads of `size` bytes, all to dst, handed to the kernel with sendmmsg(2): one system call for up
 * to 256 of them. A load generator in a UML guest needs this: there every system call is a ptrace
 * round trip on the host, so one sendto() per datagram caps it near 5,000 datagrams/s, and the
 * per-datagram work left is the kernel's own (routing, neighbour, device). Non-blocking: stops at
 * the first datagram the socket cannot take (EAGAIN) and returns the count sent so far; any other
 * error before the first datagram is thrown.
 */
napi_value RawSendMany(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  rx_t *s = rx_arg(env, info, argv, &argc, "rawsendmany(fd, dst, scopeId, buffer, size)", 1);
  if (!s) return NULL;
  int32_t scope, size;
  void *dst, *data;
  size_t dlen, len;
  if (argc < 5 || !get_int(env, argv[2], &scope) || !buf_arg(env, argv[1], &dst, &dlen) || dlen != (s->family == 6 ? 16u : 4u) ||
      !buf_arg(env, argv[3], &data, &len) || !get_int(env, argv[4], &size) || size <= 0 || len % (size_t)size != 0) {
    napi_throw_type_error(env, NULL, "rawsendmany(fd, dst (4 or 16 bytes), scopeId, buffer (a whole number of payloads), size > 0)");
    return NULL;
  }
  struct sockaddr_storage to;
  socklen_t tolen = raw_dest(s->family, dst, (uint32_t)scope, &to);
  size_t total = len / (size_t)size, sent = 0;
  struct mmsghdr msgs[256];
  struct iovec iov[256];
  while (sent < total) {
    unsigned n = total - sent > 256 ? 256 : (unsigned)(total - sent);
    for (unsigned i = 0; i < n; i++) {
      iov[i].iov_base = (char *)data + (sent + i) * (size_t)size;
      iov[i].iov_len = (size_t)size;
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = tolen;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(s->fd, msgs, n, MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || sent > 0) break;
      return throw_errno(env, "sendmmsg(raw)", errno);
    }
    sent += (size_t)r;
    if ((unsigned)r < n) break;
  }
  napi_value out;
  napi_create_int32(env, (int32_t)sent, &out);
  return out;
}

napi_value RawClose(napi_env env, napi_callback_info info) {
  int32_t fd;
  if (!int_arg(env, info, INT32_MIN, &fd, "rawclose(fd)")) return NULL;
  rx_t *s = rx_find(fd);
  if (s) rx_close(s);
  return NULL;
}

