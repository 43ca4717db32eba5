/*
 * Minimal AF_PACKET access for lvsd: gratuitous ARP and unsolicited neighbour advertisements need
 * whole Ethernet frames (the sender MAC/IP in an ARP request is the VIP, which no IP socket can
 * produce). Frames are built in TypeScript (src/election/announce.ts); this file only opens a
 * packet socket bound to one interface, sends buffers, closes it, and reads an interface's
 * index and MAC. Protocol 0 on the socket means the kernel queues no received frames to it
 * (packet(7)), so it costs nothing while idle.
 */
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  char code[32];
  snprintf(code, sizeof code, "E%d", err);
  napi_throw_error(env, code, msg);
  return NULL;
}

static int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
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
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return throw_errno(env, "socket(AF_PACKET)", errno);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = 0;
  sll.sll_ifindex = ifindex;
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "bind(AF_PACKET)", e);
  }
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
  bool isbuf = false;
  if (argc < 3 || !get_int(env, argv[0], &fd) || !get_int(env, argv[1], &ifindex) ||
      napi_is_buffer(env, argv[2], &isbuf) != napi_ok || !isbuf ||
      napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "send(fd, ifindex, buffer)");
    return NULL;
  }
  if (len < ETH_HLEN) {
    napi_throw_range_error(env, NULL, "frame shorter than an Ethernet header");
    return NULL;
  }
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifindex;
  sll.sll_halen = ETH_ALEN;
  memcpy(sll.sll_addr, data, ETH_ALEN); /* destination MAC = first 6 bytes of the frame */
  ssize_t n = sendto(fd, data, len, 0, (struct sockaddr *)&sll, sizeof sll);
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
static napi_value IfInfo(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char name[IFNAMSIZ];
  size_t nlen = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], name, sizeof name, &nlen) != napi_ok || nlen == 0) {
    napi_throw_type_error(env, NULL, "ifinfo(name)");
    return NULL;
  }
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

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"open", NULL, Open, NULL, NULL, NULL, napi_default, NULL},
    {"send", NULL, Send, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, Close, NULL, NULL, NULL, napi_default, NULL},
    {"ifinfo", NULL, IfInfo, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
