/* Shared by the addon's files (see afpacket.c for the map). */
#ifndef LVSD_ADDON_H
#define LVSD_ADDON_H
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

#define RX_BATCH 64

/* Early rejections of a raw IPv4 VRRP socket (vrrp_early_check), counted per reason until reported. */
enum { EARLY_BAD_TTL, EARLY_BAD_CHECKSUM, EARLY_N };

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

/* One advert argument [fd, dst, scopeId, payload] (the takeover and the backstop). */
typedef struct {
  rx_t *sock;
  void *dst;
  uint32_t scope;
  void *data;
  size_t len;
} advert_arg_t;

/*
 * The threads of one backstop (backstop.c) or takeover thread (takeover.c) instance and what they
 * share with JavaScript's calls: one mutex, the condition variable they wait on (CLOCK_MONOTONIC, for
 * absolute deadlines) and the stop flag. Two threads, on two CPUs of the process's mask when it has
 * two, so one frozen CPU does not stop the instance; more would only multiply idle threads by the
 * number of instances.
 */
#define STAND_IN_THREADS 2
typedef struct stand_in stand_in_t;
struct stand_in {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
  /* A thread's body. It looks at stop each time it takes mu (back) and returns when it is set, so
     nothing is sent or decided after stand_in_stop() has set it. */
  void (*run)(void *owner);
  void *owner;
  int nthreads;
  pthread_t th[STAND_IN_THREADS];
  struct stand_in_arg {
    stand_in_t *ctl;
    int cpu;
  } args[STAND_IN_THREADS];
};

/* util.c */
napi_value throw_errno(napi_env env, const char *what, int err);
double ts_ms(const struct timespec *t);
int64_t mono_ns(void);
int get_int(napi_env env, napi_value v, int32_t *out);
int args_of(napi_env env, napi_callback_info info, size_t n, napi_value *argv);
int int_arg(napi_env env, napi_callback_info info, int32_t min, int32_t *out, const char *usage);
int buf_arg(napi_env env, napi_value v, void **data, size_t *len);
int bound_socket(napi_env env, int domain, int proto, const struct sockaddr *sa, socklen_t salen, const char *what);
napi_value buf_copy(napi_env env, const void *data, size_t len);
napi_value Monotonic(napi_env env, napi_callback_info info);
napi_value TimerSlack(napi_env env, napi_callback_info info);
void cond_init_monotonic(pthread_cond_t *cv);
int stand_in_start(stand_in_t *c, int id, void (*run)(void *owner), void *owner);
void stand_in_stop(stand_in_t *c);

/* afpacket.c */
ssize_t send_frame(int fd, int ifindex, const void *data, size_t len);

/* rawsock.c */
int *rx_busy_of(int fd);
rx_t *rx_find(int fd);
napi_value rx_start(napi_env env, int fd, int family, napi_value cbv);
napi_value RawOpen(napi_env env, napi_callback_info info);
napi_value RawPoll(napi_env env, napi_callback_info info);
napi_value SetSockOpt(napi_env env, napi_callback_info info);
ssize_t raw_sendto(int fd, int family, const void *dst, uint32_t scope, const void *data, size_t len);
napi_value RawSend(napi_env env, napi_callback_info info);
napi_value RawSendMany(napi_env env, napi_callback_info info);
napi_value RawClose(napi_env env, napi_callback_info info);

/* rtnl.c */
napi_value NlOpen(napi_env env, napi_callback_info info);
int nl_talk(int fd, int type, int flags, int seq, const void *data, size_t len, int *sys);
napi_value NlRequest(napi_env env, napi_callback_info info);
void nlw_read(rx_t *s, int status);
napi_value NlWatch(napi_env env, napi_callback_info info);

/* takeover.c */
int advert_arg(napi_env env, napi_value e, advert_arg_t *a);
napi_value Takeover(napi_env env, napi_callback_info info);
napi_value TkOpen(napi_env env, napi_callback_info info);
napi_value TkLoad(napi_env env, napi_callback_info info);
napi_value TkArm(napi_env env, napi_callback_info info);
napi_value TkDisarm(napi_env env, napi_callback_info info);
napi_value TkFired(napi_env env, napi_callback_info info);
napi_value TkWait(napi_env env, napi_callback_info info);
napi_value TkClose(napi_env env, napi_callback_info info);

/* kstream.c */
napi_value KsOpen(napi_env env, napi_callback_info info);
napi_value KsClose(napi_env env, napi_callback_info info);

/* backstop.c */
napi_value BsOpen(napi_env env, napi_callback_info info);
napi_value BsArm(napi_env env, napi_callback_info info);
napi_value BsKick(napi_env env, napi_callback_info info);
napi_value BsDisarm(napi_env env, napi_callback_info info);
napi_value BsClose(napi_env env, napi_callback_info info);

/* lifecycle.c */
napi_status lifecycle_register(napi_env env, napi_value exports);

#endif
