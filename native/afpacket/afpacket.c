/*
 * Minimal AF_PACKET access for lvsd: gratuitous ARP and unsolicited neighbour advertisements need
 * whole Ethernet frames (the sender MAC/IP in an ARP request is the VIP, which no IP socket can
 * produce). Frames are built in TypeScript (src/election/announce.ts); this file only opens a
 * packet socket bound to one interface, sends buffers, closes it, and reads an interface's
 * index and MAC. Protocol 0 on the socket means the kernel queues no received frames to it
 * (packet(7)), so it costs nothing while idle.
 *
 * It also opens the raw IP sockets VRRP runs on (protocol 112), read with recvmsg(2): an IPv6 raw
 * socket hands over neither the IPv6 header nor, through recvfrom(), any ancillary data, yet the hop
 * limit RFC 5798 §7.1 requires to be 255 (IPV6_RECVHOPLIMIT) and the destination address and arrival
 * interface (IPV6_RECVPKTINFO) only come as control messages (RFC 3542 §6); for both families the
 * kernel's receive timestamp (SO_TIMESTAMPNS) dates each advert by its arrival, which is where the
 * Master_Down_Timer starts. Readiness comes from libuv (uv_poll on the loop of the calling
 * environment); datagrams are handed to a JavaScript callback on the main thread, at most RX_BATCH
 * per readiness event, or read synchronously on request (rawpoll) when a deadline must first see
 * what is waiting.
 *
 * Finally a synchronous rtnetlink request (nlopen/nlrequest): adding a VIP at a takeover is one
 * sendmsg, and because NETLINK_ROUTE requests are processed in the sender's context (rtnetlink_rcv
 * runs inside netlink_unicast), the kernel's ACK is already queued when sendmsg returns and is read
 * with MSG_DONTWAIT in the same call. That makes a VIP add cost one C call instead of a trip through
 * a JavaScript netlink library and the event loop (keepalived's netlink_talk is synchronous too).
 *
 * And the advert backstop (bs*): while an instance is Master, two threads (each pinned to its own
 * CPU, SCHED_FIFO 1 when allowed) send the Master's advert whenever JavaScript has not sent one for
 * 1.5 advert intervals. JavaScript sends every advert itself and "kicks" the backstop each time, so
 * normally the threads only wake and go back to sleep. They cover a held-up event loop and a frozen
 * CPU: measured on a loaded VM, a vCPU stopped for ~100 ms at a time (a SCHED_FIFO probe pinned to it
 * saw it), taking the Master's only thread with it while the backup, on the other CPU, timed out
 * (36 ms at 0.01 s adverts). A thread pinned to the other CPU keeps the adverts going. The threads
 * stop sending when JavaScript has not kicked for the lease (a wedged daemon must not look alive for
 * ever), and disarming takes the mutex every send holds, so after disarm returns nothing more goes out.
 *
 * And the takeover (takeover_act: VIP adds, GARP/NA frames, the new Master's first advert, after a
 * poll for a waiting advert), one set of steps over a prepared plan with two entries: the takeover
 * call, on the event loop's thread, which sleeps to the master_down deadline itself; and the
 * takeover thread (tk*), the Backup's counterpart of the backstop: loaded with a copy of the same
 * plan (descriptors dup'ed, its own rtnetlink socket) and armed with each new deadline, two threads
 * (two CPUs, SCHED_FIFO 1 when allowed) sleep to it, spin the last TAKEOVER_SPIN_NS and act there,
 * unless a datagram is waiting in one of the instance's sockets (poll) or JavaScript is reading one
 * (rx_read marks its descriptor busy until the callback, which re-arms the thread for the master's
 * advert, returns), or they woke past the late limit. JavaScript collects the decision (tkwait) at
 * its own wake, or as soon as it runs again when it was held up at the deadline; when the thread
 * stood down (or is off: `takeover_thread`), the wake's call decides again, through the same steps.
 * Measured before the thread: about one 0.01 s takeover in 50 came 4-13 ms late because the main thread was
 * busy (running, not waiting) across the deadline.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/prctl.h>
#include <time.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  char code[32];
  snprintf(code, sizeof code, "E%d", err);
  napi_throw_error(env, code, msg);
  return NULL;
}

static double ts_ms(const struct timespec *t) {
  return (double)t->tv_sec * 1e3 + (double)t->tv_nsec / 1e6;
}

/* CLOCK_MONOTONIC in ns (the takeover's deadline, the stand-in threads' schedules). */
static int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/* A Buffer argument's bytes. */
static int buf_arg(napi_env env, napi_value v, void **data, size_t *len) {
  bool isbuf = false;
  return napi_is_buffer(env, v, &isbuf) == napi_ok && isbuf && napi_get_buffer_info(env, v, data, len) == napi_ok;
}

/* One Ethernet frame on an AF_PACKET socket; the destination MAC is the frame's first 6 bytes. */
static ssize_t send_frame(int fd, int ifindex, const void *data, size_t len) {
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = ETH_ALEN;
  memcpy(sll.sll_addr, data, ETH_ALEN);
  return sendto(fd, data, len, 0, (struct sockaddr *)&sll, sizeof sll);
}

/* A non-blocking SOCK_RAW socket bound to `sa`; throws and returns -1 on failure. */
static int bound_socket(napi_env env, int domain, int proto, const struct sockaddr *sa, socklen_t salen, const char *what) {
  int fd = socket(domain, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, proto);
  if (fd < 0) {
    throw_errno(env, what, errno);
    return -1;
  }
  if (bind(fd, sa, salen) < 0) {
    int e = errno;
    close(fd);
    throw_errno(env, what, e);
    return -1;
  }
  return fd;
}

/* open(ifindex) -> fd */
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ifindex;
  if (argc < 1 || !get_int(env, argv[0], &ifindex) || ifindex <= 0) {
    napi_throw_type_error(env, NULL, "open(ifindex): ifindex must be a positive integer");
    return NULL;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;
  sll.sll_ifindex = ifindex;
  int fd = bound_socket(env, AF_PACKET, 0, (struct sockaddr *)&sll, sizeof sll, "AF_PACKET socket");
  if (fd < 0) return NULL;
  napi_value r;
  napi_create_int32(env, fd, &r);
  return r;
}

/* send(fd, ifindex, buffer) -> bytes written. Non-blocking: EAGAIN is thrown, the caller counts it. */
static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, ifindex;
  void *data;
  size_t len;
  if (argc < 3 || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &ifindex) || !buf_arg(env, argv[2], &data, &len)) {
    napi_throw_type_error(env, NULL, "send(fd, ifindex, buffer)");
    return NULL;
  }
  if (len < ETH_HLEN) {
    napi_throw_range_error(env, NULL, "frame shorter than an Ethernet header");
    return NULL;
  }
  ssize_t n = send_frame(fd, ifindex, data, len);
  if (n < 0) return throw_errno(env, "sendto(AF_PACKET)", errno);
  napi_value r;
  napi_create_int32(env, (int32_t)n, &r);
  return r;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "close(fd)");
    return NULL;
  }
  if (fd >= 0) close(fd);
  return NULL;
}

/* ifinfo(name) -> { index, mac: Buffer(6) } of the interface in the caller's network namespace. */
/* The interface name argument of ifinfo/ifindex into `name` (IFNAMSIZ); 0 and a thrown TypeError if bad. */
static size_t ifname_arg(napi_env env, napi_callback_info info, char *name, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t nlen = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, IFNAMSIZ, &nlen) != napi_ok || nlen == 0) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return nlen;
}

static napi_value IfInfo(napi_env env, napi_callback_info info) {
  char name[IFNAMSIZ];
  size_t nlen = ifname_arg(env, info, name, "ifinfo(name)");
  if (nlen == 0) return NULL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, nlen);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, name, e);
  }
  int index = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, name, e);
  }
  close(fd);
  napi_value obj, idx, mac;
  void *macdata;
  napi_create_object(env, &obj);
  napi_create_int32(env, index, &idx);
  napi_create_buffer_copy(env, ETH_ALEN, ifr.ifr_hwaddr.sa_data, &macdata, &mac);
  napi_set_named_property(env, obj, "index", idx);
  napi_set_named_property(env, obj, "mac", mac);
  return obj;
}

/*
 * ifindex(name) -> index: one ioctl on a socket kept open for the purpose (the VIP add at a takeover
 * reads the index every time, since a re-created interface gets a new one; opening a socket per call
 * cost four system calls there). The socket belongs to the network namespace the process was in when
 * it was first called, which is the daemon's for its whole life.
 */
static int ioctl_fd = -1;
static napi_value IfIndex(napi_env env, napi_callback_info info) {
  char name[IFNAMSIZ];
  size_t nlen = ifname_arg(env, info, name, "ifindex(name)");
  if (nlen == 0) return NULL;
  if (ioctl_fd < 0) {
    ioctl_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (ioctl_fd < 0) return throw_errno(env, "socket", errno);
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, nlen);
  if (ioctl(ioctl_fd, SIOCGIFINDEX, &ifr) < 0) return throw_errno(env, name, errno);
  napi_value r;
  napi_create_int32(env, ifr.ifr_ifindex, &r);
  return r;
}

/* ------------------------------------------------------------------ raw IP sockets (VRRP) */

#define RX_BATCH 64
#define RX_EARLY_MAX 1024
#define RX_BUF 4096

/* Early rejections of a raw IPv4 VRRP socket (vrrp_early_check), counted per reason until reported. */
enum { EARLY_BAD_TTL, EARLY_BAD_CHECKSUM, EARLY_N };
static const char *const early_reason[EARLY_N] = {"bad_ttl", "bad_checksum"};

typedef struct rx {
  uv_poll_t poll;
  int fd;
  int family;
  int closing;
  /* IPv4 VRRP socket: reject bad TTL / checksum here, before any JavaScript value is made. */
  int vrrp_check;
  uint32_t early[EARLY_N];
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  struct rx *next;
} rx_t;

static rx_t *rx_list = NULL;

/* Reads in progress per descriptor number (the last slot for numbers beyond RX_FD_MAX), for the
   takeover thread: while one is, a datagram has left the socket but its callback (which re-arms the
   thread when it is the master's advert) has not returned. */
#define RX_FD_MAX 4096
static int rx_busy[RX_FD_MAX + 1];
static int *rx_busy_of(int fd) {
  return &rx_busy[fd >= 0 && fd < RX_FD_MAX ? fd : RX_FD_MAX];
}

static rx_t *rx_find(int fd) {
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

static napi_value buf_copy(napi_env env, const void *data, size_t len) {
  napi_value b;
  void *out;
  napi_create_buffer_copy(env, len, data, &out, &b);
  return b;
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

static void nlw_read(rx_t *s, int status);

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
static napi_value rx_start(napi_env env, int fd, int family, napi_value cbv) {
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
static napi_value RawOpen(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t family, proto;
  napi_valuetype t = napi_undefined;
  if (argc < 3 || !get_int(env, argv[0], &family) || (family != 4 && family != 6) || !get_int(env, argv[1], &proto) || proto <= 0 || proto > 255 ||
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
static napi_value RawPoll(napi_env env, napi_callback_info info) {
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
static napi_value SetSockOpt(napi_env env, napi_callback_info info) {
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
static ssize_t raw_sendto(int fd, int family, const void *dst, uint32_t scope, const void *data, size_t len) {
  struct sockaddr_storage to;
  socklen_t tolen = raw_dest(family, dst, scope, &to);
  ssize_t n = sendto(fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&to, tolen);
  return n < 0 ? -errno : n;
}

static napi_value RawSend(napi_env env, napi_callback_info info) {
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
static napi_value RawSendMany(napi_env env, napi_callback_info info) {
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

static napi_value RawClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  if (argc < 1 || !get_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "rawclose(fd)");
    return NULL;
  }
  rx_t *s = rx_find(fd);
  if (s) rx_close(s);
  return NULL;
}

/*
 * timerslack(ns): PR_SET_TIMERSLACK for the calling thread. Linux lets a sleeping thread's timer
 * expire up to its slack late (default 50 µs) to batch wake-ups; the master_down deadline is slept
 * for on the main thread (futex and epoll timeouts), so lvsd sets it to 1 ns there (prctl(2)).
 */
/* monotonic(): CLOCK_MONOTONIC in ms (the clock of rxMonoMs and of takeover's sleep). */
static napi_value Monotonic(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  napi_value v;
  napi_create_double(env, ts_ms(&t), &v);
  return v;
}

static napi_value TimerSlack(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t ns;
  if (argc < 1 || !get_int(env, argv[0], &ns) || ns < 1) {
    napi_throw_type_error(env, NULL, "timerslack(ns >= 1)");
    return NULL;
  }
  if (prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_TIMERSLACK)", errno);
  return NULL;
}

/* nlopen(protocol) -> fd: a non-blocking netlink socket bound to a kernel-chosen port. */
static napi_value NlOpen(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t proto;
  if (argc < 1 || !get_int(env, argv[0], &proto) || proto < 0) {
    napi_throw_type_error(env, NULL, "nlopen(protocol)");
    return NULL;
  }
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
static int nl_talk(int fd, int type, int flags, int seq, const void *data, size_t len, int *sys) {
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

static napi_value NlRequest(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd, type, flags, seq;
  void *data;
  size_t len;
  if (argc < 5 || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &type) || !get_int(env, argv[2], &flags) ||
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

/* ------------------------------------------------------------------ the takeover (one set of steps) */

/*
 * What a Backup→Master transition puts on the wire, with no JavaScript between the steps (each step
 * of a just-woken JavaScript turn cost 0.1–0.3 ms on the failover bench, and the JavaScript after it
 * competed for the CPUs with the traffic the takeover had just drawn). The steps are prepared ahead
 * as a plan (takeover_plan_t: the same arguments for both entries below) and carried out by
 * takeover_act() at the master_down deadline, by whichever thread gets there:
 *  - the takeover call (takeover()), on the event loop's thread: it sleeps to the deadline itself;
 *  - the takeover thread (tk*, below), loaded with a copy of the plan and armed with the deadline,
 *    when the event loop is held up then.
 * The caller (the runtime) has already stepped the pure machine to know this expiry makes it Master.
 * takeover_act(), at `late` ms past the deadline:
 *  1. past the late limit (limit >= 0): status -2, nothing done (too late to tell a dead master from
 *     a frozen machine: the machine's late guard decides);
 *  2. poll(2) the VRRP sockets with timeout 0: if any is readable an advert may be waiting, which
 *     must be read before the expiry is acted on — status -1, nothing done; so too while one of
 *     them is being read on the event loop (rx_busy: a datagram has left the socket but its
 *     callback, which re-arms the deadline when it was the master's advert, has not returned);
 *  3. RTM_NEWADDR (NLM_F_CREATE|NLM_F_EXCL) per payload, seq, seq+1, ... (0 / -errno / 1);
 *  4. the frames [packetFd, ifindex, frame] once (each VIP's GARP / NA), then the adverts
 *     [rawFd, dst, scopeId, payload] (RFC 5798 6.4.2: a new Master advertises at once), then the
 *     frames rounds-1 more times (a burst with no spacing, as keepalived sends it).
 * Both entries answer as [status, lateMs, addResult..., framesSent, advertsSent] (status 0) or
 * [status, lateMs] (nothing done).
 */
#define TAKEOVER_MAX_WAIT_MS 10.0
/* Measured with a C loop on this VM (session 9, 1 ns timer slack): clock_nanosleep to an absolute
   time woke 83 / 96 / 277 µs late (p50 / p90 / p99) after 3 ms asleep, 179 / 222 / 628 µs after
   20 ms; sleeping to 250 µs before and spinning the rest landed at 0 µs at p90. The call sleeps at
   most ~5 ms, hence 200 µs; the spin costs at most that much CPU once per takeover. */
#define TAKEOVER_SPIN_NS 200000L
#define TAKEOVER_POLL_MAX 64
#define TAKEOVER_ADD_MAX 256
#define TAKEOVER_FRAMES_MAX 256
#define TAKEOVER_ADV_MAX 64
#define TAKEOVER_ROUNDS_MAX 64
#define TAKEOVER_BUF_MAX 4096

/* One advert argument [fd, dst, scopeId, payload]: fd one of our raw IP sockets, dst its family's
   address size. 1 when well-formed (the buffers point into the JavaScript values), else 0. */
typedef struct {
  rx_t *sock;
  void *dst;
  uint32_t scope;
  void *data;
  size_t len;
} advert_arg_t;

static int advert_arg(napi_env env, napi_value e, advert_arg_t *a) {
  napi_value x;
  int32_t fd, scope;
  size_t dlen;
  if (napi_get_element(env, e, 0, &x) != napi_ok || !get_int(env, x, &fd)) return 0;
  a->sock = rx_find(fd);
  if (!a->sock || a->sock->family == 0) return 0; /* not a raw IP socket (an nlwatch one) */
  if (napi_get_element(env, e, 1, &x) != napi_ok || !buf_arg(env, x, &a->dst, &dlen) || dlen != (a->sock->family == 6 ? 16u : 4u)) return 0;
  if (napi_get_element(env, e, 2, &x) != napi_ok || !get_int(env, x, &scope)) return 0;
  a->scope = (uint32_t)scope;
  return napi_get_element(env, e, 3, &x) == napi_ok && buf_arg(env, x, &a->data, &a->len);
}

/* A takeover's steps. Pointers into the JavaScript arguments (the call) or into copies (the thread). */
typedef struct {
  int npoll;
  int pollfd[TAKEOVER_POLL_MAX]; /* polled */
  int busyfd[TAKEOVER_POLL_MAX]; /* the descriptor the event loop reads it as (rx_busy); the thread polls a dup */
  int nadd;
  const unsigned char *payload[TAKEOVER_ADD_MAX];
  size_t plen[TAKEOVER_ADD_MAX];
  int nframes;
  struct {
    int fd, ifindex;
    const unsigned char *data;
    size_t len;
  } frame[TAKEOVER_FRAMES_MAX];
  int rounds;
  int nadv;
  struct {
    int fd, family;
    unsigned char dst[16];
    uint32_t scope;
    const unsigned char *data;
    size_t len;
  } adv[TAKEOVER_ADV_MAX];
} takeover_plan_t;

typedef struct {
  int32_t status; /* 0 acted, -1 a datagram waiting or being read, -2 past the late limit, -3 no decision (tkwait) */
  double late_ms;
  int nadd;
  int32_t added[TAKEOVER_ADD_MAX];
  int32_t sent, adverts;
} takeover_result_t;

/*
 * The plan's arguments pollFds[], payloads[], frames[[packetFd, ifindex, frame]], rounds,
 * adverts[[rawFd, dst, scopeId, payload]] into p (pointing into the JavaScript values). Every entry
 * is checked: 0 and a TypeError with `usage` when any is malformed.
 */
static int takeover_plan_arg(napi_env env, napi_value polls, napi_value pays, napi_value frames, napi_value rounds, napi_value advs,
                             takeover_plan_t *p, const char *usage) {
  bool a1 = false, a2 = false, a3 = false, a4 = false;
  uint32_t npoll = 0, nadd = 0, nframes = 0, nadv = 0;
  int32_t r = 0;
  int ok = napi_is_array(env, polls, &a1) == napi_ok && a1 && napi_is_array(env, pays, &a2) == napi_ok && a2 &&
           napi_is_array(env, frames, &a3) == napi_ok && a3 && napi_is_array(env, advs, &a4) == napi_ok && a4 && get_int(env, rounds, &r) &&
           napi_get_array_length(env, polls, &npoll) == napi_ok && napi_get_array_length(env, pays, &nadd) == napi_ok &&
           napi_get_array_length(env, frames, &nframes) == napi_ok && napi_get_array_length(env, advs, &nadv) == napi_ok &&
           npoll <= TAKEOVER_POLL_MAX && nadd <= TAKEOVER_ADD_MAX && nframes <= TAKEOVER_FRAMES_MAX && nadv <= TAKEOVER_ADV_MAX &&
           r >= 1 && r <= TAKEOVER_ROUNDS_MAX;
  napi_value v, x;
  void *data;
  size_t len;
  for (uint32_t i = 0; ok && i < npoll; i++) {
    int32_t fd = -1;
    ok = napi_get_element(env, polls, i, &v) == napi_ok && get_int(env, v, &fd) && fd >= 0;
    p->pollfd[i] = p->busyfd[i] = fd;
  }
  for (uint32_t i = 0; ok && i < nadd; i++) {
    ok = napi_get_element(env, pays, i, &v) == napi_ok && buf_arg(env, v, &data, &len) && len <= TAKEOVER_BUF_MAX;
    p->payload[i] = data;
    p->plen[i] = len;
  }
  for (uint32_t i = 0; ok && i < nframes; i++) {
    ok = napi_get_element(env, frames, i, &v) == napi_ok && napi_get_element(env, v, 0, &x) == napi_ok && get_int(env, x, &p->frame[i].fd) &&
         napi_get_element(env, v, 1, &x) == napi_ok && get_int(env, x, &p->frame[i].ifindex) && napi_get_element(env, v, 2, &x) == napi_ok &&
         buf_arg(env, x, &data, &len) && len >= ETH_HLEN && len <= TAKEOVER_BUF_MAX;
    p->frame[i].data = data;
    p->frame[i].len = len;
  }
  for (uint32_t i = 0; ok && i < nadv; i++) {
    advert_arg_t a;
    ok = napi_get_element(env, advs, i, &v) == napi_ok && advert_arg(env, v, &a) && a.len <= TAKEOVER_BUF_MAX;
    if (!ok) break;
    p->adv[i].fd = a.sock->fd;
    p->adv[i].family = a.sock->family;
    memcpy(p->adv[i].dst, a.dst, a.sock->family == 6 ? 16 : 4);
    p->adv[i].scope = a.scope;
    p->adv[i].data = a.data;
    p->adv[i].len = a.len;
  }
  if (!ok) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  p->npoll = (int)npoll;
  p->nadd = (int)nadd;
  p->nframes = (int)nframes;
  p->rounds = r;
  p->nadv = (int)nadv;
  return 1;
}

/* The takeover's steps (see above), `late_ms` past its deadline; *seq advances per VIP add. */
static void takeover_act(const takeover_plan_t *p, int nlfd, int32_t *seq, double late_ms, double limit_ms, takeover_result_t *r) {
  r->late_ms = late_ms;
  r->nadd = p->nadd;
  r->sent = r->adverts = 0;
  /* 1. */
  if (limit_ms >= 0 && late_ms > limit_ms) {
    r->status = -2;
    return;
  }
  /* 2. */
  struct pollfd pfd[TAKEOVER_POLL_MAX];
  for (int i = 0; i < p->npoll; i++) {
    pfd[i].fd = p->pollfd[i];
    pfd[i].events = POLLIN;
    pfd[i].revents = 0;
  }
  int ready;
  do ready = poll(pfd, (nfds_t)p->npoll, 0);
  while (ready < 0 && errno == EINTR);
  r->status = -1;
  if (ready != 0) return; /* readable (or poll failed): the event loop reads it first */
  /* After the poll: a datagram the event loop took off the socket just before it is still in its
     callback (on the thread, that callback's re-arm waits for the mutex held here). */
  for (int i = 0; i < p->npoll; i++)
    if (__atomic_load_n(rx_busy_of(p->busyfd[i]), __ATOMIC_SEQ_CST) != 0) return;
  /* 3. */
  for (int i = 0; i < p->nadd; i++) {
    int sys = 0;
    int res = nl_talk(nlfd, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, *seq, p->payload[i], p->plen[i], &sys);
    *seq = *seq >= 0x7ffffff0 ? 1 : *seq + 1;
    r->added[i] = sys ? -sys : res;
  }
  /* 4. */
  for (int round = 0; round < p->rounds; round++) {
    for (int i = 0; i < p->nframes; i++)
      if (send_frame(p->frame[i].fd, p->frame[i].ifindex, p->frame[i].data, p->frame[i].len) >= 0) r->sent++;
    if (round > 0) continue;
    for (int i = 0; i < p->nadv; i++)
      if (raw_sendto(p->adv[i].fd, p->adv[i].family, p->adv[i].dst, p->adv[i].scope, p->adv[i].data, p->adv[i].len) >= 0) r->adverts++;
  }
  r->status = 0;
}

/* The result as both entries answer it. */
static napi_value takeover_result_js(napi_env env, const takeover_result_t *r) {
  napi_value out, v;
  napi_create_array(env, &out);
  napi_create_int32(env, r->status, &v);
  napi_set_element(env, out, 0, v);
  napi_create_double(env, r->late_ms, &v);
  napi_set_element(env, out, 1, v);
  if (r->status != 0) return out;
  for (int i = 0; i < r->nadd; i++) {
    napi_create_int32(env, r->added[i], &v);
    napi_set_element(env, out, (uint32_t)i + 2, v);
  }
  napi_create_int32(env, r->sent, &v);
  napi_set_element(env, out, (uint32_t)r->nadd + 2, v);
  napi_create_int32(env, r->adverts, &v);
  napi_set_element(env, out, (uint32_t)r->nadd + 3, v);
  return out;
}

/* Busy-wait to CLOCK_MONOTONIC `at` (ns); returns the time it saw there. */
static int64_t spin_to(int64_t at) {
  int64_t now;
  do now = mono_ns();
  while (now < at);
  return now;
}

/*
 * takeover(pollFds, nlFd, seq, payloads, frames, rounds, adverts[, waitMs, lateLimitMs]): the
 * takeover call. Every argument is read first; then, with waitMs > 0, the thread sleeps until
 * waitMs after entry (the master_down deadline: clock_nanosleep, CLOCK_MONOTONIC, absolute, to
 * TAKEOVER_SPIN_NS before it, then a spin) and acts there (takeover_act); lateMs is how far past
 * that target it acted (negative waitMs: how late the call came). Sleeping here rather than in
 * JavaScript before the call saved the ~0.3 ms a just-woken JavaScript turn took between its futex
 * wake and this call's first syscall (perf, session 9).
 */
static napi_value Takeover(napi_env env, napi_callback_info info) {
  int64_t entry = mono_ns();
  size_t argc = 9;
  napi_value argv[9];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t nlfd, seq;
  double wait_ms = 0, limit_ms = -1;
  static const char usage[] = "takeover(pollFds[] (<= 64), nlFd, seq, payloads[] (<= 256, <= 4096 bytes), frames[[fd, ifindex, frame]] (<= 256), rounds (1-64), adverts[[fd, dst, scopeId, payload]] (<= 64)[, waitMs (<= 10), lateLimitMs])";
  if (argc < 7 || !get_int(env, argv[1], &nlfd) || !get_int(env, argv[2], &seq) ||
      (argc >= 8 && (napi_get_value_double(env, argv[7], &wait_ms) != napi_ok || !(wait_ms <= TAKEOVER_MAX_WAIT_MS))) ||
      (argc >= 9 && napi_get_value_double(env, argv[8], &limit_ms) != napi_ok)) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  takeover_plan_t plan;
  if (!takeover_plan_arg(env, argv[0], argv[3], argv[4], argv[5], argv[6], &plan, usage)) return NULL;
  /* The deadline, counted from entry (the caller computed waitMs just before the call). */
  int64_t target = entry + (int64_t)(wait_ms * 1e6), now = mono_ns();
  if (wait_ms > 0) {
    /* The wake from an idle CPU came 70-180 µs after the target here (p50; 1 ns timer slack):
       sleep-then-spin lands on it. */
    int64_t early = target - TAKEOVER_SPIN_NS;
    if (early > now) {
      struct timespec ts = {.tv_sec = early / 1000000000LL, .tv_nsec = early % 1000000000LL};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
    }
    now = spin_to(target);
  }
  takeover_result_t r;
  takeover_act(&plan, nlfd, &seq, (double)(now - target) / 1e6, limit_ms, &r);
  return takeover_result_js(env, &r);
}

/* ------------------------------------------------------------------ address notifications */

/*
 * One readiness event of an nlwatch socket: for every RTM_NEWADDR / RTM_DELADDR notification call
 *   cb(type, family, ifindex)
 * and, when the kernel dropped notifications (ENOBUFS: the socket's queue overflowed), cb(0, 0, 0)
 * once, so the caller re-reads the state instead of trusting the stream. Parsing happens here, so a
 * burst of address changes (our own VIP add at a takeover among them) costs a few µs each instead of
 * a JavaScript netlink decoder's work.
 */
static void nlw_read(rx_t *s, int status) {
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
static napi_value NlWatch(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_valuetype t = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "nlwatch(callback)");
    return NULL;
  }
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  sa.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
  int fd = bound_socket(env, AF_NETLINK, NETLINK_ROUTE, (struct sockaddr *)&sa, sizeof sa, "socket(AF_NETLINK) for address notifications");
  if (fd < 0) return NULL;
  return rx_start(env, fd, 0, argv[0]);
}

/* ------------------------------------------------------------------ the kernel stream (channel lvsd) */

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
static napi_value KsOpen(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char group[64], ifaddr[64];
  size_t gl = 0, il = 0;
  int32_t port, rcvbuf;
  napi_valuetype t = napi_undefined;
  struct in_addr g, ifa;
  if (argc < 5 || napi_get_value_string_utf8(env, argv[0], group, sizeof group, &gl) != napi_ok || !get_int(env, argv[1], &port) || port <= 0 || port > 65535 ||
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
static napi_value KsClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  void *data = NULL;
  napi_valuetype t = napi_undefined;
  if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "ksclose(handle)");
    return NULL;
  }
  ks_t **box = (ks_t **)data;
  if (*box) ks_close(*box);
  return NULL;
}

/* ------------------------------------------------------------------ stand-in threads (bs*, tk*) */

/* The CPUs of the process's affinity mask into cpus; returns how many (0 when unknown). */
static int process_cpus(int *cpus) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) cpus[n++] = c;
  }
  return n;
}

/* A stand-in thread's start: 1 ns timer slack, pinned to `cpu` (>= 0), SCHED_FIFO 1 when allowed. */
static void stand_in_thread_setup(int cpu) {
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  struct sched_param sp = {.sched_priority = 1};
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); /* best effort: needs CAP_SYS_NICE */
}

/* ------------------------------------------------------------------ advert backstop (see header) */

#define BS_MAX 64
#define BS_DST_MAX 16
#define BS_THREADS 2
#define BS_PAYLOAD_MAX 1500

struct bs;
struct bs_arg {
  struct bs *b;
  int cpu;
};

typedef struct bs {
  int used;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop, armed, lapsed;
  rx_t sock; /* family + a dup of the transport's raw socket (its own reference: the transport may close first) */
  int ndst;
  unsigned char dst[BS_DST_MAX][16];
  uint32_t scope[BS_DST_MAX];
  unsigned char payload[BS_DST_MAX][BS_PAYLOAD_MAX];
  size_t len[BS_DST_MAX];
  int64_t interval_ns, lease_ns, due_ns, kick_ns;
  uint64_t sent, reported;
  int nthreads;
  pthread_t th[BS_THREADS];
  struct bs_arg args[BS_THREADS];
} bs_t;

static bs_t bs_tab[BS_MAX];

static void bs_schedule(bs_t *b, int64_t now) {
  b->kick_ns = now;
  b->due_ns = now + b->interval_ns + b->interval_ns / 2;
}

static void *bs_thread(void *p) {
  struct bs_arg *a = p;
  bs_t *b = a->b;
  stand_in_thread_setup(a->cpu);
  pthread_mutex_lock(&b->mu);
  while (!b->stop) {
    if (!b->armed || b->lapsed) {
      pthread_cond_wait(&b->cv, &b->mu);
      continue;
    }
    int64_t now = mono_ns();
    if (now < b->due_ns) {
      struct timespec ts = {.tv_sec = b->due_ns / 1000000000LL, .tv_nsec = b->due_ns % 1000000000LL};
      pthread_cond_timedwait(&b->cv, &b->mu, &ts);
      continue;
    }
    if (now - b->kick_ns >= b->lease_ns) {
      b->lapsed = 1; /* JavaScript stopped kicking: stop standing in for it until it kicks again */
      continue;
    }
    for (int i = 0; i < b->ndst; i++) raw_sendto(b->sock.fd, b->sock.family, b->dst[i], b->scope[i], b->payload[i], b->len[i]);
    b->sent++;
    b->due_ns = now + b->interval_ns;
  }
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

static bs_t *bs_arg(napi_env env, napi_value v) {
  int32_t id;
  if (!get_int(env, v, &id) || id < 0 || id >= BS_MAX || !bs_tab[id].used) return NULL;
  return &bs_tab[id];
}

/* The backstop of a call whose one argument is its id; NULL (with a TypeError thrown when `usage`) otherwise. */
static bs_t *bs_only_arg(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bs_t *b = argc >= 1 ? bs_arg(env, argv[0]) : NULL;
  if (!b && usage) napi_throw_type_error(env, NULL, usage);
  return b;
}

/* bsopen(intervalMs, leaseMs) -> id: threads started (two, pinned to two CPUs of the process's mask), disarmed. */
static napi_value BsOpen(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t interval, lease;
  if (argc < 2 || !get_int(env, argv[0], &interval) || !get_int(env, argv[1], &lease) || interval < 1 || lease < interval) {
    napi_throw_type_error(env, NULL, "bsopen(intervalMs >= 1, leaseMs >= intervalMs)");
    return NULL;
  }
  int id = -1;
  for (int i = 0; i < BS_MAX; i++)
    if (!bs_tab[i].used) {
      id = i;
      break;
    }
  if (id < 0) return throw_errno(env, "bsopen", EMFILE);
  bs_t *b = &bs_tab[id];
  memset(b, 0, sizeof *b);
  b->sock.fd = -1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&b->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&b->mu, NULL);
  b->interval_ns = (int64_t)interval * 1000000LL;
  b->lease_ns = (int64_t)lease * 1000000LL;
  b->used = 1;
  /* Two threads on two different CPUs of the process's mask survive one frozen CPU; more would only
     multiply idle threads by the number of instances. Backstops are spread over the mask by id. */
  int cpus[CPU_SETSIZE], ncpu = process_cpus(cpus);
  int n = ncpu >= BS_THREADS ? BS_THREADS : 1;
  for (int i = 0; i < n; i++) {
    b->args[i].b = b;
    b->args[i].cpu = ncpu > 0 ? cpus[(id * BS_THREADS + i) % ncpu] : -1;
    if (pthread_create(&b->th[b->nthreads], NULL, bs_thread, &b->args[i]) == 0) b->nthreads++;
  }
  if (b->nthreads == 0) {
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    b->used = 0;
    return throw_errno(env, "bsopen: pthread_create", EAGAIN);
  }
  napi_value r;
  napi_create_int32(env, id, &r);
  return r;
}

/* bsarm(id, adverts[[fd, dst, scopeId, payload]]): the Master's advert per destination; the schedule restarts now. */
static napi_value BsArm(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bs_t *b = argc >= 2 ? bs_arg(env, argv[0]) : NULL;
  bool isarr = false;
  uint32_t n = 0;
  if (!b || napi_is_array(env, argv[1], &isarr) != napi_ok || !isarr || napi_get_array_length(env, argv[1], &n) != napi_ok || n < 1 || n > BS_DST_MAX) {
    napi_throw_type_error(env, NULL, "bsarm(id, adverts[[fd, dst, scopeId, payload]] (1-16))");
    return NULL;
  }
  /* Parse everything before touching the shared state (a bad argument leaves it as it was). */
  advert_arg_t adv[BS_DST_MAX];
  rx_t *s = NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    if (napi_get_element(env, argv[1], i, &e) != napi_ok || !advert_arg(env, e, &adv[i]) || (s && adv[i].sock != s) || adv[i].len > BS_PAYLOAD_MAX) {
      napi_throw_type_error(env, NULL, "bsarm: each advert is [fd of one raw VRRP socket, dst (its family's size), scopeId, payload (<= 1500)]");
      return NULL;
    }
    s = adv[i].sock;
  }
  int fd = -1;
  if (b->sock.fd < 0 || b->sock.family != s->family) {
    fd = dup(s->fd);
    if (fd < 0) return throw_errno(env, "bsarm: dup", errno);
  }
  pthread_mutex_lock(&b->mu);
  if (fd >= 0) {
    if (b->sock.fd >= 0) close(b->sock.fd);
    b->sock.fd = fd;
    b->sock.family = s->family;
  }
  b->ndst = (int)n;
  for (uint32_t i = 0; i < n; i++) {
    memcpy(b->dst[i], adv[i].dst, s->family == 6 ? 16 : 4);
    b->scope[i] = adv[i].scope;
    memcpy(b->payload[i], adv[i].data, adv[i].len);
    b->len[i] = adv[i].len;
  }
  b->armed = 1;
  b->lapsed = 0;
  bs_schedule(b, mono_ns());
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* bskick(id) -> adverts the backstop sent since the last kick: JavaScript just sent one itself. */
static napi_value BsKick(napi_env env, napi_callback_info info) {
  bs_t *b = bs_only_arg(env, info, "bskick(id)");
  if (!b) return NULL;
  pthread_mutex_lock(&b->mu);
  bs_schedule(b, mono_ns());
  if (b->lapsed) {
    b->lapsed = 0;
    pthread_cond_broadcast(&b->cv);
  }
  uint64_t d = b->sent - b->reported;
  b->reported = b->sent;
  pthread_mutex_unlock(&b->mu);
  napi_value r;
  napi_create_double(env, (double)d, &r);
  return r;
}

/* bsdisarm(id): no advert goes out after this returns (every send holds the mutex). */
static napi_value BsDisarm(napi_env env, napi_callback_info info) {
  bs_t *b = bs_only_arg(env, info, "bsdisarm(id)");
  if (!b) return NULL;
  pthread_mutex_lock(&b->mu);
  b->armed = 0;
  pthread_mutex_unlock(&b->mu);
  return NULL;
}

/* bsclose(id): threads stopped and joined, socket reference closed. */
static napi_value BsClose(napi_env env, napi_callback_info info) {
  bs_t *b = bs_only_arg(env, info, NULL); /* closing an unknown id is a no-op */
  if (!b) return NULL;
  pthread_mutex_lock(&b->mu);
  b->stop = 1;
  b->armed = 0;
  pthread_cond_broadcast(&b->cv);
  pthread_mutex_unlock(&b->mu);
  for (int i = 0; i < b->nthreads; i++) pthread_join(b->th[i], NULL);
  if (b->sock.fd >= 0) close(b->sock.fd);
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
  b->used = 0;
  return NULL;
}

/* ------------------------------------------------------------------ takeover thread (tk*, see header) */

#define TK_MAX 64
#define TK_THREADS 2
/* The second thread (another CPU) acts only this long after the deadline, when the first has not:
   its CPU may be the frozen one. */
#define TK_SECOND_NS 1000000LL

struct tk;
struct tk_arg {
  struct tk *t;
  int cpu, index;
};

typedef struct tk {
  int used, stop, loaded, armed, decided, taken, spinning;
  pthread_mutex_t mu;
  pthread_cond_t cv;   /* the threads wait on it */
  pthread_cond_t done; /* tkwait waits on it */
  int nlfd;
  int32_t seq;
  /* The plan (tkload): the takeover call's, with descriptors dup'ed (their own references) and buffers copied. */
  takeover_plan_t plan;
  /* The arm (tkarm). */
  int64_t due_ns;
  double limit_ms;
  uint64_t gen;
  takeover_result_t result; /* the arm's decision */
  int nthreads;
  pthread_t th[TK_THREADS];
  struct tk_arg args[TK_THREADS];
} tk_t;

static tk_t tk_tab[TK_MAX];

static void tk_drop_plan(tk_t *t) {
  takeover_plan_t *p = &t->plan;
  for (int i = 0; i < p->npoll; i++) close(p->pollfd[i]);
  for (int i = 0; i < p->nadd; i++) free((void *)p->payload[i]);
  for (int i = 0; i < p->nframes; i++) {
    close(p->frame[i].fd);
    free((void *)p->frame[i].data);
  }
  for (int i = 0; i < p->nadv; i++) {
    close(p->adv[i].fd);
    free((void *)p->adv[i].data);
  }
  p->npoll = p->nadd = p->nframes = p->nadv = 0;
  t->loaded = 0;
}

/* Decide, with the mutex held, at `now` (≥ the deadline): one decision per arm (takeover_act). */
static void tk_decide(tk_t *t, int64_t now) {
  t->armed = 0;
  t->decided = 1;
  t->taken = 0;
  takeover_act(&t->plan, t->nlfd, &t->seq, (double)(now - t->due_ns) / 1e6, t->limit_ms, &t->result);
  pthread_cond_broadcast(&t->done);
}

static void tk_until(tk_t *t, int64_t at) {
  struct timespec ts = {.tv_sec = at / 1000000000LL, .tv_nsec = at % 1000000000LL};
  pthread_cond_timedwait(&t->cv, &t->mu, &ts);
}

static void *tk_thread(void *p) {
  struct tk_arg *a = p;
  tk_t *t = a->t;
  stand_in_thread_setup(a->cpu);
  pthread_mutex_lock(&t->mu);
  while (!t->stop) {
    if (!t->armed || !t->loaded) {
      pthread_cond_wait(&t->cv, &t->mu);
      continue;
    }
    int64_t now = mono_ns(), due = t->due_ns;
    if (t->spinning) {
      /* The other thread is on it; stand by in case its CPU is the frozen one. */
      if (now < due + TK_SECOND_NS) tk_until(t, due + TK_SECOND_NS);
      else tk_decide(t, now);
      continue;
    }
    if (now < due - TAKEOVER_SPIN_NS) {
      tk_until(t, due - TAKEOVER_SPIN_NS);
      continue;
    }
    /* Within TAKEOVER_SPIN_NS: spin to the deadline without the mutex (a re-arm may move it). */
    uint64_t gen = t->gen;
    t->spinning = 1;
    pthread_mutex_unlock(&t->mu);
    spin_to(due);
    pthread_mutex_lock(&t->mu);
    t->spinning = 0;
    if (t->gen == gen && t->armed) tk_decide(t, mono_ns());
  }
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

static tk_t *tk_arg_of(napi_env env, napi_value v) {
  int32_t id;
  if (!get_int(env, v, &id) || id < 0 || id >= TK_MAX || !tk_tab[id].used) return NULL;
  return &tk_tab[id];
}

/* tkopen() -> id: its threads (two CPUs, SCHED_FIFO 1 when allowed) and its own rtnetlink socket. */
static napi_value TkOpen(napi_env env, napi_callback_info info) {
  (void)info;
  int id = -1;
  for (int i = 0; i < TK_MAX; i++)
    if (!tk_tab[i].used) {
      id = i;
      break;
    }
  if (id < 0) return throw_errno(env, "tkopen", EMFILE);
  tk_t *t = &tk_tab[id];
  memset(t, 0, sizeof *t);
  struct sockaddr_nl sa;
  memset(&sa, 0, sizeof sa);
  sa.nl_family = AF_NETLINK;
  t->nlfd = bound_socket(env, AF_NETLINK, NETLINK_ROUTE, (struct sockaddr *)&sa, sizeof sa, "tkopen: socket(AF_NETLINK)");
  if (t->nlfd < 0) return NULL;
  t->seq = 1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&t->cv, &ca);
  pthread_cond_init(&t->done, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&t->mu, NULL);
  t->used = 1;
  int cpus[CPU_SETSIZE], ncpu = process_cpus(cpus);
  int n = ncpu >= TK_THREADS ? TK_THREADS : 1;
  for (int i = 0; i < n; i++) {
    t->args[i].t = t;
    t->args[i].index = i;
    t->args[i].cpu = ncpu > 0 ? cpus[(id * TK_THREADS + i) % ncpu] : -1;
    if (pthread_create(&t->th[t->nthreads], NULL, tk_thread, &t->args[i]) == 0) t->nthreads++;
  }
  if (t->nthreads == 0) {
    close(t->nlfd);
    pthread_cond_destroy(&t->cv);
    pthread_cond_destroy(&t->done);
    pthread_mutex_destroy(&t->mu);
    t->used = 0;
    return throw_errno(env, "tkopen: pthread_create", EAGAIN);
  }
  napi_value r;
  napi_create_int32(env, id, &r);
  return r;
}

static unsigned char *tk_copy(const void *data, size_t len) {
  unsigned char *p = malloc(len ? len : 1);
  if (p) memcpy(p, data, len);
  return p;
}

/*
 * tkload(id, pollFds[], payloads[], frames[[fd, ifindex, frame]], rounds (1-64), adverts[[fd, dst, scopeId, payload]]):
 * the takeover call's plan (its arguments less the netlink socket, which is the thread's own),
 * dup'ed and copied here; disarms. Malformed arguments throw and leave the old plan.
 */
static napi_value TkLoad(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  tk_t *t = argc >= 6 ? tk_arg_of(env, argv[0]) : NULL;
  static const char usage[] = "tkload(id, pollFds[] (<= 64), payloads[] (<= 256, <= 4096 bytes), frames[[fd, ifindex, frame]] (<= 256), rounds (1-64), adverts[[fd, dst, scopeId, payload]] (<= 64))";
  if (!t) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  /* Everything is checked before anything is taken: a bad argument leaves the old plan. */
  takeover_plan_t in;
  if (!takeover_plan_arg(env, argv[1], argv[2], argv[3], argv[4], argv[5], &in, usage)) return NULL;
  pthread_mutex_lock(&t->mu);
  tk_drop_plan(t);
  t->armed = 0;
  takeover_plan_t *p = &t->plan;
  int err = 0;
  for (int i = 0; !err && i < in.npoll; i++) {
    int d = dup(in.pollfd[i]);
    if (d < 0) err = errno;
    else {
      p->pollfd[p->npoll] = d;
      p->busyfd[p->npoll++] = in.busyfd[i];
    }
  }
  for (int i = 0; !err && i < in.nadd; i++) {
    unsigned char *c = tk_copy(in.payload[i], in.plen[i]);
    if (!c) err = ENOMEM;
    else {
      p->payload[p->nadd] = c;
      p->plen[p->nadd++] = in.plen[i];
    }
  }
  for (int i = 0; !err && i < in.nframes; i++) {
    int d = dup(in.frame[i].fd);
    unsigned char *c = d < 0 ? NULL : tk_copy(in.frame[i].data, in.frame[i].len);
    if (!c) {
      err = d < 0 ? errno : ENOMEM;
      if (d >= 0) close(d);
    } else {
      p->frame[p->nframes] = in.frame[i];
      p->frame[p->nframes].fd = d;
      p->frame[p->nframes++].data = c;
    }
  }
  for (int i = 0; !err && i < in.nadv; i++) {
    int d = dup(in.adv[i].fd);
    unsigned char *c = d < 0 ? NULL : tk_copy(in.adv[i].data, in.adv[i].len);
    if (!c) {
      err = d < 0 ? errno : ENOMEM;
      if (d >= 0) close(d);
    } else {
      p->adv[p->nadv] = in.adv[i];
      p->adv[p->nadv].fd = d;
      p->adv[p->nadv++].data = c;
    }
  }
  p->rounds = in.rounds;
  if (err) tk_drop_plan(t);
  else t->loaded = 1;
  pthread_mutex_unlock(&t->mu);
  if (err) return throw_errno(env, "tkload", err);
  return NULL;
}
/* tkarm(id, dueMonoMs, lateLimitMs): act at that CLOCK_MONOTONIC time unless told otherwise. */
static napi_value TkArm(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  tk_t *t = argc >= 3 ? tk_arg_of(env, argv[0]) : NULL;
  double due_ms, limit;
  if (!t || napi_get_value_double(env, argv[1], &due_ms) != napi_ok || !(due_ms >= 0 && due_ms < 9.2e12) ||
      napi_get_value_double(env, argv[2], &limit) != napi_ok || limit != limit) {
    napi_throw_type_error(env, NULL, "tkarm(id, dueMonoMs (>= 0), lateLimitMs (< 0: none))");
    return NULL;
  }
  pthread_mutex_lock(&t->mu);
  if (!t->loaded) {
    pthread_mutex_unlock(&t->mu);
    return throw_errno(env, "tkarm: nothing loaded", EINVAL);
  }
  int64_t due = (int64_t)(due_ms * 1e6);
  /* The threads only need waking when the deadline comes nearer (or they wait disarmed); a later
     one they find when their wait for the old one ends. */
  int wake = !t->armed || due < t->due_ns;
  t->due_ns = due;
  t->limit_ms = limit;
  t->gen++;
  t->armed = 1;
  t->decided = 0;
  if (wake) pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

static tk_t *tk_only_arg(napi_env env, napi_callback_info info, const char *usage) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  tk_t *t = argc >= 1 ? tk_arg_of(env, argv[0]) : NULL;
  if (!t && usage) napi_throw_type_error(env, NULL, usage);
  return t;
}

/* tkdisarm(id): the thread does not act after this returns (it decides holding the mutex). */
static napi_value TkDisarm(napi_env env, napi_callback_info info) {
  tk_t *t = tk_only_arg(env, info, "tkdisarm(id)");
  if (!t) return NULL;
  pthread_mutex_lock(&t->mu);
  t->armed = 0;
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

/* tkfired(id) -> true when the thread took over and tkwait has not collected it yet. */
static napi_value TkFired(napi_env env, napi_callback_info info) {
  tk_t *t = tk_only_arg(env, info, "tkfired(id)");
  if (!t) return NULL;
  pthread_mutex_lock(&t->mu);
  bool f = t->decided && !t->taken && t->result.status == 0;
  pthread_mutex_unlock(&t->mu);
  napi_value r;
  napi_get_boolean(env, f, &r);
  return r;
}

/*
 * tkwait(id, timeoutMs (<= 20)) -> the decision of the current arm, collected once, as the takeover
 * call returns it: [status, lateMs, added..., framesSent, advertsSent] when it acted (0), [-1, lateMs]
 * (a datagram was waiting or read) or [-2, lateMs] (past the late limit). Waits for it up to
 * timeoutMs; none by then (or nothing armed, or already collected): [-3, 0], and the arm is
 * cancelled, so the thread does not act after this returns.
 */
static napi_value TkWait(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  tk_t *t = argc >= 2 ? tk_arg_of(env, argv[0]) : NULL;
  double timeout;
  if (!t || napi_get_value_double(env, argv[1], &timeout) != napi_ok || !(timeout >= 0 && timeout <= 20)) {
    napi_throw_type_error(env, NULL, "tkwait(id, timeoutMs (0-20))");
    return NULL;
  }
  pthread_mutex_lock(&t->mu);
  int64_t until = mono_ns() + (int64_t)(timeout * 1e6);
  while (t->armed && !t->decided && mono_ns() < until) {
    struct timespec ts = {.tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL};
    pthread_cond_timedwait(&t->done, &t->mu, &ts);
  }
  takeover_result_t r = t->result;
  if (!t->decided || t->taken) {
    t->armed = 0;
    r = (takeover_result_t){.status = -3};
  } else t->taken = 1;
  pthread_mutex_unlock(&t->mu);
  return takeover_result_js(env, &r);
}

/* tkclose(id): threads stopped and joined, descriptors and copies released. */
static napi_value TkClose(napi_env env, napi_callback_info info) {
  tk_t *t = tk_only_arg(env, info, NULL); /* closing an unknown id is a no-op */
  if (!t) return NULL;
  pthread_mutex_lock(&t->mu);
  t->stop = 1;
  t->armed = 0;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  for (int i = 0; i < t->nthreads; i++) pthread_join(t->th[i], NULL);
  tk_drop_plan(t);
  close(t->nlfd);
  pthread_cond_destroy(&t->cv);
  pthread_cond_destroy(&t->done);
  pthread_mutex_destroy(&t->mu);
  t->used = 0;
  return NULL;
}

napi_status lifecycle_register(napi_env env, napi_value exports); /* lifecycle.c */

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"bsopen", NULL, BsOpen, NULL, NULL, NULL, napi_default, NULL},
    {"tkopen", NULL, TkOpen, NULL, NULL, NULL, napi_default, NULL},
    {"tkload", NULL, TkLoad, NULL, NULL, NULL, napi_default, NULL},
    {"tkarm", NULL, TkArm, NULL, NULL, NULL, napi_default, NULL},
    {"tkdisarm", NULL, TkDisarm, NULL, NULL, NULL, napi_default, NULL},
    {"tkfired", NULL, TkFired, NULL, NULL, NULL, napi_default, NULL},
    {"tkwait", NULL, TkWait, NULL, NULL, NULL, napi_default, NULL},
    {"tkclose", NULL, TkClose, NULL, NULL, NULL, napi_default, NULL},
    {"bsarm", NULL, BsArm, NULL, NULL, NULL, napi_default, NULL},
    {"bskick", NULL, BsKick, NULL, NULL, NULL, napi_default, NULL},
    {"bsdisarm", NULL, BsDisarm, NULL, NULL, NULL, napi_default, NULL},
    {"bsclose", NULL, BsClose, NULL, NULL, NULL, napi_default, NULL},
    {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
    {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
    {"ifinfo", NULL, IfInfo, NULL, NULL, NULL, napi_default, NULL},
    {"ifindex", NULL, IfIndex, NULL, NULL, NULL, napi_default, NULL},
    {"rawopen", NULL, RawOpen, NULL, NULL, NULL, napi_default, NULL},
    {"rawsend", NULL, RawSend, NULL, NULL, NULL, napi_default, NULL},
    {"rawsendmany", NULL, RawSendMany, NULL, NULL, NULL, napi_default, NULL},
    {"rawpoll", NULL, RawPoll, NULL, NULL, NULL, napi_default, NULL},
    {"rawclose", NULL, RawClose, NULL, NULL, NULL, napi_default, NULL},
    {"timerslack", NULL, TimerSlack, NULL, NULL, NULL, napi_default, NULL},
    {"monotonic", NULL, Monotonic, NULL, NULL, NULL, napi_default, NULL},
    {"nlwatch", NULL, NlWatch, NULL, NULL, NULL, napi_default, NULL},
    {"takeover", NULL, Takeover, NULL, NULL, NULL, napi_default, NULL},
    {"setsockopt", NULL, SetSockOpt, NULL, NULL, NULL, napi_default, NULL},
    {"nlopen", NULL, NlOpen, NULL, NULL, NULL, napi_default, NULL},
    {"nlrequest", NULL, NlRequest, NULL, NULL, NULL, napi_default, NULL},
    {"ksopen", NULL, KsOpen, NULL, NULL, NULL, napi_default, NULL},
    {"ksclose", NULL, KsClose, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  lifecycle_register(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
