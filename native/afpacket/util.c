/* What the addon's files share: argument and error helpers, clocks, sockets, the stand-in threads' start. */
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

/* The stand-in threads (backstop.c, takeover.c). */

/* The CPUs of the process's affinity mask into cpus; returns how many (0 when unknown). */
int process_cpus(int *cpus) {
  cpu_set_t set;
  int n = 0;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) cpus[n++] = c;
  }
  return n;
}

/* A stand-in thread's start: 1 ns timer slack, pinned to `cpu` (>= 0), SCHED_FIFO 1 when allowed. */
void stand_in_thread_setup(int cpu) {
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

