/*
 * The takeover (takeover_act: VIP adds, GARP/NA frames, the new Master's first advert, after a
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
#include "addon.h"

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

int advert_arg(napi_env env, napi_value e, advert_arg_t *a) {
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
napi_value Takeover(napi_env env, napi_callback_info info) {
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

/* ------------------------------------------------------------------ the takeover thread (tk*, see the top) */

#define TK_MAX 64
/* The second thread (another CPU) acts only this long after the deadline, when the first has not:
   its CPU may be the frozen one. */
#define TK_SECOND_NS 1000000LL

typedef struct tk {
  int used, loaded, armed, decided, taken, spinning;
  stand_in_t ctl;      /* its threads, the mutex every decision holds, stop */
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
  pthread_cond_timedwait(&t->ctl.cv, &t->ctl.mu, &ts);
}

static void tk_thread(void *owner) {
  tk_t *t = owner;
  pthread_mutex_lock(&t->ctl.mu);
  while (!t->ctl.stop) {
    if (!t->armed || !t->loaded) {
      pthread_cond_wait(&t->ctl.cv, &t->ctl.mu);
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
    pthread_mutex_unlock(&t->ctl.mu);
    spin_to(due);
    pthread_mutex_lock(&t->ctl.mu);
    t->spinning = 0;
    /* Not after tkclose (stop) either: it may have come during the spin. */
    if (t->gen == gen && t->armed && !t->ctl.stop) tk_decide(t, mono_ns());
  }
  pthread_mutex_unlock(&t->ctl.mu);
}

static tk_t *tk_arg_of(napi_env env, napi_value v) {
  int32_t id;
  if (!get_int(env, v, &id) || id < 0 || id >= TK_MAX || !tk_tab[id].used) return NULL;
  return &tk_tab[id];
}

/* tkopen() -> id: its threads (two CPUs, SCHED_FIFO 1 when allowed) and its own rtnetlink socket. */
napi_value TkOpen(napi_env env, napi_callback_info info) {
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
  cond_init_monotonic(&t->done);
  t->used = 1;
  if (!stand_in_start(&t->ctl, id, tk_thread, t)) {
    close(t->nlfd);
    pthread_cond_destroy(&t->done);
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
napi_value TkLoad(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  tk_t *t = args_of(env, info, 6, argv) ? tk_arg_of(env, argv[0]) : NULL;
  static const char usage[] = "tkload(id, pollFds[] (<= 64), payloads[] (<= 256, <= 4096 bytes), frames[[fd, ifindex, frame]] (<= 256), rounds (1-64), adverts[[fd, dst, scopeId, payload]] (<= 64))";
  if (!t) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  /* Everything is checked before anything is taken: a bad argument leaves the old plan. */
  takeover_plan_t in;
  if (!takeover_plan_arg(env, argv[1], argv[2], argv[3], argv[4], argv[5], &in, usage)) return NULL;
  pthread_mutex_lock(&t->ctl.mu);
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
  pthread_mutex_unlock(&t->ctl.mu);
  if (err) return throw_errno(env, "tkload", err);
  return NULL;
}
/* tkarm(id, dueMonoMs, lateLimitMs): act at that CLOCK_MONOTONIC time unless told otherwise. */
napi_value TkArm(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  tk_t *t = args_of(env, info, 3, argv) ? tk_arg_of(env, argv[0]) : NULL;
  double due_ms, limit;
  if (!t || napi_get_value_double(env, argv[1], &due_ms) != napi_ok || !(due_ms >= 0 && due_ms < 9.2e12) ||
      napi_get_value_double(env, argv[2], &limit) != napi_ok || limit != limit) {
    napi_throw_type_error(env, NULL, "tkarm(id, dueMonoMs (>= 0), lateLimitMs (< 0: none))");
    return NULL;
  }
  pthread_mutex_lock(&t->ctl.mu);
  if (!t->loaded) {
    pthread_mutex_unlock(&t->ctl.mu);
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
  if (wake) pthread_cond_broadcast(&t->ctl.cv);
  pthread_mutex_unlock(&t->ctl.mu);
  return NULL;
}

static tk_t *tk_only_arg(napi_env env, napi_callback_info info, const char *usage) {
  napi_value v;
  tk_t *t = args_of(env, info, 1, &v) ? tk_arg_of(env, v) : NULL;
  if (!t && usage) napi_throw_type_error(env, NULL, usage);
  return t;
}

/* tkdisarm(id): the thread does not act after this returns (it decides holding the mutex). */
napi_value TkDisarm(napi_env env, napi_callback_info info) {
  tk_t *t = tk_only_arg(env, info, "tkdisarm(id)");
  if (!t) return NULL;
  pthread_mutex_lock(&t->ctl.mu);
  t->armed = 0;
  pthread_mutex_unlock(&t->ctl.mu);
  return NULL;
}

/* tkfired(id) -> true when the thread took over and tkwait has not collected it yet. */
napi_value TkFired(napi_env env, napi_callback_info info) {
  tk_t *t = tk_only_arg(env, info, "tkfired(id)");
  if (!t) return NULL;
  pthread_mutex_lock(&t->ctl.mu);
  bool f = t->decided && !t->taken && t->result.status == 0;
  pthread_mutex_unlock(&t->ctl.mu);
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
napi_value TkWait(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  tk_t *t = args_of(env, info, 2, argv) ? tk_arg_of(env, argv[0]) : NULL;
  double timeout;
  if (!t || napi_get_value_double(env, argv[1], &timeout) != napi_ok || !(timeout >= 0 && timeout <= 20)) {
    napi_throw_type_error(env, NULL, "tkwait(id, timeoutMs (0-20))");
    return NULL;
  }
  pthread_mutex_lock(&t->ctl.mu);
  int64_t until = mono_ns() + (int64_t)(timeout * 1e6);
  while (t->armed && !t->decided && mono_ns() < until) {
    struct timespec ts = {.tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL};
    pthread_cond_timedwait(&t->done, &t->ctl.mu, &ts);
  }
  takeover_result_t r = t->result;
  if (!t->decided || t->taken) {
    t->armed = 0;
    r = (takeover_result_t){.status = -3};
  } else t->taken = 1;
  pthread_mutex_unlock(&t->ctl.mu);
  return takeover_result_js(env, &r);
}

/* tkclose(id): threads stopped and joined, descriptors and copies released. */
napi_value TkClose(napi_env env, napi_callback_info info) {
  tk_t *t = tk_only_arg(env, info, NULL); /* closing an unknown id is a no-op */
  if (!t) return NULL;
  stand_in_stop(&t->ctl);
  tk_drop_plan(t);
  close(t->nlfd);
  pthread_cond_destroy(&t->done);
  t->used = 0;
  return NULL;
}

napi_status lifecycle_register(napi_env env, napi_value exports); /* lifecycle.c */
