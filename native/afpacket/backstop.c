/*
 * The advert backstop (bs*): while an instance is Master, two threads (each pinned to its own
 * CPU, SCHED_FIFO 1 when allowed) send the Master's advert whenever JavaScript has not sent one for
 * 1.5 advert intervals. JavaScript sends every advert itself and "kicks" the backstop each time, so
 * normally the threads only wake and go back to sleep. They cover a held-up event loop and a frozen
 * CPU: measured on a loaded VM, a vCPU stopped for ~100 ms at a time (a SCHED_FIFO probe pinned to it
 * saw it), taking the Master's only thread with it while the backup, on the other CPU, timed out
 * (36 ms at 0.01 s adverts). A thread pinned to the other CPU keeps the adverts going. The threads
 * stop sending when JavaScript has not kicked for the lease (a wedged daemon must not look alive for
 * ever), and disarming takes the mutex every send holds, so after disarm returns nothing more goes out.
 */
#include "addon.h"

#define BS_MAX 64
#define BS_DST_MAX 16
#define BS_PAYLOAD_MAX 1500

typedef struct bs {
  int used;
  stand_in_t ctl; /* its threads, the mutex every send holds, stop */
  int armed, lapsed;
  rx_t sock; /* family + a dup of the transport's raw socket (its own reference: the transport may close first) */
  int ndst;
  unsigned char dst[BS_DST_MAX][16];
  uint32_t scope[BS_DST_MAX];
  unsigned char payload[BS_DST_MAX][BS_PAYLOAD_MAX];
  size_t len[BS_DST_MAX];
  int64_t interval_ns, lease_ns, due_ns, kick_ns;
  uint64_t sent, reported;
} bs_t;

static bs_t bs_tab[BS_MAX];

static void bs_schedule(bs_t *b, int64_t now) {
  b->kick_ns = now;
  b->due_ns = now + b->interval_ns + b->interval_ns / 2;
}

static void bs_thread(void *owner) {
  bs_t *b = owner;
  pthread_mutex_lock(&b->ctl.mu);
  while (!b->ctl.stop) {
    if (!b->armed || b->lapsed) {
      pthread_cond_wait(&b->ctl.cv, &b->ctl.mu);
      continue;
    }
    int64_t now = mono_ns();
    if (now < b->due_ns) {
      struct timespec ts = {.tv_sec = b->due_ns / 1000000000LL, .tv_nsec = b->due_ns % 1000000000LL};
      pthread_cond_timedwait(&b->ctl.cv, &b->ctl.mu, &ts);
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
  pthread_mutex_unlock(&b->ctl.mu);
}

static bs_t *bs_arg(napi_env env, napi_value v) {
  int32_t id;
  if (!get_int(env, v, &id) || id < 0 || id >= BS_MAX || !bs_tab[id].used) return NULL;
  return &bs_tab[id];
}

/* The backstop of a call whose one argument is its id; NULL (with a TypeError thrown when `usage`) otherwise. */
static bs_t *bs_only_arg(napi_env env, napi_callback_info info, const char *usage) {
  napi_value v;
  bs_t *b = args_of(env, info, 1, &v) ? bs_arg(env, v) : NULL;
  if (!b && usage) napi_throw_type_error(env, NULL, usage);
  return b;
}

/* bsopen(intervalMs, leaseMs) -> id: threads started (two, pinned to two CPUs of the process's mask), disarmed. */
napi_value BsOpen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t interval, lease;
  if (!args_of(env, info, 2, argv) || !get_int(env, argv[0], &interval) || !get_int(env, argv[1], &lease) || interval < 1 || lease < interval) {
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
  b->interval_ns = (int64_t)interval * 1000000LL;
  b->lease_ns = (int64_t)lease * 1000000LL;
  b->used = 1;
  if (!stand_in_start(&b->ctl, id, bs_thread, b)) {
    b->used = 0;
    return throw_errno(env, "bsopen: pthread_create", EAGAIN);
  }
  napi_value r;
  napi_create_int32(env, id, &r);
  return r;
}

/* bsarm(id, adverts[[fd, dst, scopeId, payload]]): the Master's advert per destination; the schedule restarts now. */
napi_value BsArm(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  bs_t *b = args_of(env, info, 2, argv) ? bs_arg(env, argv[0]) : NULL;
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
  pthread_mutex_lock(&b->ctl.mu);
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
  pthread_cond_broadcast(&b->ctl.cv);
  pthread_mutex_unlock(&b->ctl.mu);
  return NULL;
}

/* bskick(id) -> adverts the backstop sent since the last kick: JavaScript just sent one itself. */
napi_value BsKick(napi_env env, napi_callback_info info) {
  bs_t *b = bs_only_arg(env, info, "bskick(id)");
  if (!b) return NULL;
  pthread_mutex_lock(&b->ctl.mu);
  bs_schedule(b, mono_ns());
  if (b->lapsed) {
    b->lapsed = 0;
    pthread_cond_broadcast(&b->ctl.cv);
  }
  uint64_t d = b->sent - b->reported;
  b->reported = b->sent;
  pthread_mutex_unlock(&b->ctl.mu);
  napi_value r;
  napi_create_double(env, (double)d, &r);
  return r;
}

/* bsdisarm(id): no advert goes out after this returns (every send holds the mutex). */
napi_value BsDisarm(napi_env env, napi_callback_info info) {
  bs_t *b = bs_only_arg(env, info, "bsdisarm(id)");
  if (!b) return NULL;
  pthread_mutex_lock(&b->ctl.mu);
  b->armed = 0;
  pthread_mutex_unlock(&b->ctl.mu);
  return NULL;
}

/* bsclose(id): threads stopped and joined, socket reference closed. */
napi_value BsClose(napi_env env, napi_callback_info info) {
  bs_t *b = bs_only_arg(env, info, NULL); /* closing an unknown id is a no-op */
  if (!b) return NULL;
  stand_in_stop(&b->ctl);
  if (b->sock.fd >= 0) close(b->sock.fd);
  b->used = 0;
  return NULL;
}

