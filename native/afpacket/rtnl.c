/*
 * A synchronous rtnetlink request (nlopen/nlrequest): adding a VIP at a takeover is one
 * sendmsg, and because NETLINK_ROUTE requests are processed in the sender's context (rtnetlink_rcv
 * runs inside netlink_unicast), the kernel's ACK is already queued when sendmsg returns and is read
 * with MSG_DONTWAIT in the same call. That makes a VIP add cost one C call instead of a trip through
 * a JavaScript netlink library and the event loop (keepalived's netlink_talk is synchronous too).
 *
 * And the address notifications (nlwatch): a NETLINK_ROUTE socket in the address groups, polled on
 * the loop as a raw socket is (an rx_t of family 0, rawsock.c).
 */
#include "addon.h"

/* nlopen(protocol) -> fd: a non-blocking netlink socket bound to a kernel-chosen port. */
napi_value NlOpen(napi_env env, napi_callback_info info) {
  int32_t proto;
  if (!int_arg(env, info, 0, &proto, "nlopen(protocol)")) return NULL;
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  int fd = bound_socket(env, AF_NETLINK, proto, (struct sockaddr *)&sa, sizeof sa, "AF_NETLINK socket");
  if (fd < 0) return NULL;
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

/*
 * nlrequest(fd, type, flags, seq, payload) -> 0 (ACK without error), -errno (the kernel's error),
 * or 1 when no ACK was queued yet (a protocol that answers asynchronously; the caller verifies).
 * NLM_F_REQUEST|NLM_F_ACK are added to flags. Messages in the queue with another sequence number
 * (late answers to earlier requests) are skipped.
 */
/*
 * One request on a NETLINK_ROUTE socket: sendmsg, then read the ACK (already queued: rtnetlink
 * runs in the sender's context). Returns 0 / -errno from the kernel, 1 when no ACK was queued, or
 * sets *sys to the errno of a failed syscall.
 */
int nl_talk(int fd, int type, int flags, int seq, const void *data, size_t len, int *sys) {
  char out[NLMSG_HDRLEN + 4096] __attribute__((aligned(4)));
  struct nlmsghdr *h = (struct nlmsghdr *)out;
  *sys = 0;
  memset(h, 0, NLMSG_HDRLEN);
  h->nlmsg_len = NLMSG_LENGTH(len);
  h->nlmsg_type = (uint16_t)type;
  h->nlmsg_flags = (uint16_t)(flags | NLM_F_REQUEST | NLM_F_ACK);
  h->nlmsg_seq = (uint32_t)seq;
  memcpy(out + NLMSG_HDRLEN, data, len);
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t n;
  do n = sendto(fd, out, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    *sys = errno;
    return 1;
  }
  int result = 1;
  char in[8192] __attribute__((aligned(4)));
  for (int rounds = 0; rounds < 64 && result == 1; rounds++) {
    ssize_t got;
    do got = recv(fd, in, sizeof in, MSG_DONTWAIT);
    while (got < 0 && errno == EINTR);
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      *sys = errno;
      return 1;
    }
    int rem = (int)got;
    for (struct nlmsghdr *m = (struct nlmsghdr *)in; NLMSG_OK(m, rem); m = NLMSG_NEXT(m, rem)) {
      if (m->nlmsg_seq != (uint32_t)seq || m->nlmsg_type != NLMSG_ERROR) continue;
      if (m->nlmsg_len < NLMSG_LENGTH(sizeof(int))) continue; /* malformed: keep looking */
      result = ((struct nlmsgerr *)NLMSG_DATA(m))->error; /* 0 or -errno */
      break;
    }
  }
  return result;
}

napi_value NlRequest(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd, type, flags, seq;
  void *data;
  size_t len;
  if (!args_of(env, info, 5, argv) || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &type) || !get_int(env, argv[2], &flags) ||
      !get_int(env, argv[3], &seq) || !buf_arg(env, argv[4], &data, &len)) {
    napi_throw_type_error(env, NULL, "nlrequest(fd, type, flags, seq, payload)");
    return NULL;
  }
  if (len > 4096) {
    napi_throw_range_error(env, NULL, "netlink payload larger than 4096 bytes");
    return NULL;
  }
  int sys;
  int32_t result = nl_talk(fd, type, flags, seq, data, len, &sys);
  if (sys) return throw_errno(env, "netlink request", sys);
  napi_value r;
  napi_create_int32(env, result, &r);
  return r;
}

/*
 * One readiness event of an nlwatch socket: for every RTM_NEWADDR / RTM_DELADDR notification call
 *   cb(type, family, ifindex)
 * and, when the kernel dropped notifications (ENOBUFS: the socket's queue overflowed), cb(0, 0, 0)
 * once, so the caller re-reads the state instead of trusting the stream. Parsing happens here, so a
 * burst of address changes (our own VIP add at a takeover among them) costs a few µs each instead of
 * a JavaScript netlink decoder's work.
 */
void nlw_read(rx_t *s, int status) {
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, self;
  napi_get_reference_value(env, s->cb, &cb);
  napi_get_global(env, &self);
  for (int i = 0; i < RX_BATCH && !s->closing; i++) {
    union {
      struct nlmsghdr align;
      unsigned char b[16384];
    } buf;
    int triples[3 * 64];
    int nt = 0;
    ssize_t n = status < 0 ? -1 : recv(s->fd, buf.b, sizeof buf.b, MSG_DONTWAIT);
    if (n < 0) {
      int e = status < 0 ? -status : errno;
      if (status >= 0 && e == EINTR) continue;
      if (status >= 0 && (e == EAGAIN || e == EWOULDBLOCK)) break;
      triples[0] = triples[1] = triples[2] = 0; /* ENOBUFS or another error: re-read everything */
      nt = 1;
      i = RX_BATCH;
    } else {
      int len = (int)n;
      for (struct nlmsghdr *h = &buf.align; NLMSG_OK(h, len) && nt < 64; h = NLMSG_NEXT(h, len)) {
        if ((h->nlmsg_type != RTM_NEWADDR && h->nlmsg_type != RTM_DELADDR) || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifaddrmsg))) continue;
        const struct ifaddrmsg *ifa = (const struct ifaddrmsg *)NLMSG_DATA(h);
        triples[3 * nt] = h->nlmsg_type;
        triples[3 * nt + 1] = ifa->ifa_family;
        triples[3 * nt + 2] = (int)ifa->ifa_index;
        nt++;
      }
    }
    for (int k = 0; k < nt; k++) {
      napi_value argv[3], result;
      for (int j = 0; j < 3; j++) napi_create_int32(env, triples[3 * k + j], &argv[j]);
      if (napi_make_callback(env, s->actx, self, cb, 3, argv, &result) == napi_pending_exception) {
        napi_value exc;
        napi_get_and_clear_last_exception(env, &exc);
        napi_fatal_exception(env, exc);
        i = RX_BATCH;
        break;
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

/*
 * nlwatch(callback) -> fd: a NETLINK_ROUTE socket in the IPv4 and IPv6 address groups
 * (RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR), polled on the loop. Close with rawclose(fd).
 */
napi_value NlWatch(napi_env env, napi_callback_info info) {
  napi_value cb;
  napi_valuetype t = napi_undefined;
  if (!args_of(env, info, 1, &cb) || napi_typeof(env, cb, &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "nlwatch(callback)");
    return NULL;
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  int fd = bound_socket(env, AF_NETLINK, NETLINK_ROUTE, (struct sockaddr *)&sa, sizeof sa, "socket(AF_NETLINK) for address notifications");
  if (fd < 0) return NULL;
  return rx_start(env, fd, 0, cb);
}

