/*
 * Minimal AF_PACKET access for lvsd: gratuitous ARP and unsolicited neighbour advertisements need
 * whole Ethernet frames (the sender MAC/IP in an ARP request is the VIP, which no IP socket can
 * produce). Frames are built in TypeScript (src/election/announce.ts); this file only opens a
 * packet socket bound to one interface, sends buffers, closes it, and reads an interface's
 * index and MAC. Protocol 0 on the socket means the kernel queues no received frames to it
 * (packet(7)), so it costs nothing while idle.
 *
 * The addon's files, one role each (addon.h holds what they share):
 *  - afpacket.c  this: AF_PACKET frames, interface index and MAC, and the module's export table;
 *  - rawsock.c   the raw IP sockets VRRP runs on, read on the event loop (rx_t);
 *  - rtnl.c      synchronous rtnetlink requests (a VIP add) and address notifications;
 *  - takeover.c  a Backup->Master takeover as one set of steps, by the call or the takeover thread;
 *  - backstop.c  the Master's advert backstop threads;
 *  - kstream.c   the kernel stream's socket of sync channel lvsd (recvmmsg batches);
 *  - util.c      argument and error helpers, clocks, the stand-in threads' start and stop;
 *  - lifecycle.c the single-instance lock and systemd notification of `lvsd run`.
 */
#include "addon.h"

/* One Ethernet frame on an AF_PACKET socket; the destination MAC is the frame's first 6 bytes. */
ssize_t send_frame(int fd, int ifindex, const void *data, size_t len) {
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = ETH_ALEN;
  memcpy(sll.sll_addr, data, ETH_ALEN);
  return sendto(fd, data, len, 0, (struct sockaddr *)&sll, sizeof sll);
}

/* open(ifindex) -> fd */
static napi_value Open(napi_env env, napi_callback_info info) {
  int32_t ifindex;
  if (!int_arg(env, info, 1, &ifindex, "open(ifindex): ifindex must be a positive integer")) return NULL;
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
  napi_value argv[3];
  int32_t fd, ifindex;
  void *data;
  size_t len;
  if (!args_of(env, info, 3, argv) || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &ifindex) || !buf_arg(env, argv[2], &data, &len)) {
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
  int32_t fd;
  if (!int_arg(env, info, INT32_MIN, &fd, "close(fd)")) return NULL;
  if (fd >= 0) close(fd);
  return NULL;
}

/* ifinfo(name) -> { index, mac: Buffer(6) } of the interface in the caller's network namespace. */
/* The interface name argument of ifinfo/ifindex into `name` (IFNAMSIZ); 0 and a thrown TypeError if bad. */
static size_t ifname_arg(napi_env env, napi_callback_info info, char *name, const char *usage) {
  napi_value v;
  size_t nlen = 0;
  if (!args_of(env, info, 1, &v) || napi_get_value_string_utf8(env, v, name, IFNAMSIZ, &nlen) != napi_ok || nlen == 0) {
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
