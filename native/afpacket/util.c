/* What the addon's files share: argument and error helpers, clocks, sockets, the stand-in threads' start and stop. */
#include "addon.h"

napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  char code[32];
  snprintf(code, sizeof code, "E%d", err);
  napi_throw_error(env, code, msg);
  return NULL;
}

double ts_ms(const struct timespec *t) {
  return (double)t->tv_sec * 1e3 + (double)t->tv_nsec / 1e6;
}

/* CLOCK_MONOTONIC in ns (the takeover's deadline, the stand-in threads' schedules). */
int64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

/*
 * The call's first n arguments into argv (undefined where missing); 0 when fewer than n were given.
 * It throws nothing: each export throws its own usage text when this or a later check fails.
 */
int args_of(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  return napi_get_cb_info(env, info, &argc, argv, NULL, NULL) == napi_ok && argc >= n;
}

/* The call's one int32 argument, at least `min`, into *out; else 0 with a TypeError saying `usage`. */
int int_arg(napi_env env, napi_callback_info info, int32_t min, int32_t *out, const char *usage) {
  napi_value v;
  if (args_of(env, info, 1, &v) && get_int(env, v, out) && *out >= min) return 1;
  napi_throw_type_error(env, NULL, usage);
  return 0;
}

/* A Buffer argument's bytes. */
int buf_arg(napi_env env, napi_value v, void **data, size_t *len) {
  bool isbuf = false;
  return napi_is_buffer(env, v, &isbuf) == napi_ok && isbuf && napi_get_buffer_info(env, v, data, len) == napi_ok;
}

/* A non-blocking SOCK_RAW socket bound to `sa`; throws and returns -1 on failure. */
int bound_socket(napi_env env, int domain, int proto, const struct sockaddr *sa, socklen_t salen, const char *what) {
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

napi_value buf_copy(napi_env env, const void *data, size_t len) {
  napi_value b;
  void *out;
  napi_create_buffer_copy(env, len, data, &out, &b);
  return b;
}

/* monotonic(): CLOCK_MONOTONIC in ms (the clock of rxMonoMs and of takeover's sleep). */
napi_value Monotonic(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  napi_value v;
  napi_create_double(env, ts_ms(&t), &v);
  return v;
}

/*
 * timerslack(ns): PR_SET_TIMERSLACK for the calling thread. Linux lets a sleeping thread's timer
 * expire up to its slack late (default 50 µs) to batch wake-ups; the master_down deadline is slept
 * for on the main thread (futex and epoll timeouts), so lvsd sets it to 1 ns there (prctl(2)).
 */
napi_value TimerSlack(napi_env env, napi_callback_info info) {
  int32_t ns;
  if (!int_arg(env, info, 1, &ns, "timerslack(ns >= 1)")) return NULL;
  if (prctl(PR_SET_TIMERSLACK, (unsigned long)ns, 0, 0, 0) < 0) return throw_errno(env, "prctl(PR_SET_TIMERSLACK)", errno);
  return NULL;
}

/* The stand-in threads (backstop.c, takeover.c; stand_in_t in addon.h). */

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

/* A condition variable whose timed waits take CLOCK_MONOTONIC deadlines (mono_ns). */
void cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(cv, &ca);
  pthread_condattr_destroy(&ca);
}

/* A stand-in thread: 1 ns timer slack, pinned to its CPU (>= 0), SCHED_FIFO 1 when allowed, then the owner's body. */
static void *stand_in_main(void *p) {
  struct stand_in_arg *a = p;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  if (a->cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(a->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  }
  struct sched_param sp = {.sched_priority = 1};
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); /* best effort: needs CAP_SYS_NICE */
  a->ctl->run(a->ctl->owner);
  return NULL;
}

/*
 * Initialize c (zeroed by the caller) and start its threads running run(owner): STAND_IN_THREADS of
 * them, one when the process has a single CPU; instances are spread over the mask by `id`. Returns
 * how many started; none: the mutex and condition variable are destroyed again.
 */
int stand_in_start(stand_in_t *c, int id, void (*run)(void *owner), void *owner) {
  pthread_mutex_init(&c->mu, NULL);
  cond_init_monotonic(&c->cv);
  c->run = run;
  c->owner = owner;
  int cpus[CPU_SETSIZE], ncpu = process_cpus(cpus);
  int n = ncpu >= STAND_IN_THREADS ? STAND_IN_THREADS : 1;
  for (int i = 0; i < n; i++) {
    c->args[i].ctl = c;
    c->args[i].cpu = ncpu > 0 ? cpus[(id * STAND_IN_THREADS + i) % ncpu] : -1;
    if (pthread_create(&c->th[c->nthreads], NULL, stand_in_main, &c->args[i]) == 0) c->nthreads++;
  }
  if (c->nthreads == 0) {
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
  }
  return c->nthreads;
}

/*
 * Stop c's threads and join them, then destroy the mutex and condition variable. stop is set under
 * the mutex: a thread looks at it whenever it takes the mutex back, so none acts after this returns.
 */
void stand_in_stop(stand_in_t *c) {
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_broadcast(&c->cv);
  pthread_mutex_unlock(&c->mu);
  for (int i = 0; i < c->nthreads; i++) pthread_join(c->th[i], NULL);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
}
