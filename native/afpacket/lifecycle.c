/*
 * Process lifecycle helpers for `lvsd run` (separate from the packet code in afpacket.c):
 *
 * lockfile(path, text): the single-instance lock. flock(2) LOCK_EX|LOCK_NB on a file in the state
 * directory. The kernel drops the lock when the holder's descriptor is closed, which includes its
 * death by any signal (kill -9), so a stale lock cannot exist and no PID has to be trusted (a pid
 * file naming a reused PID blocked start-up before). The descriptor is O_CLOEXEC so a notify or
 * check script, which may outlive the daemon, never inherits the lock; O_NOFOLLOW so a symlink
 * planted in the state directory cannot redirect the open. On success the file is rewritten with
 * `text` (the holder's PID, for the error message of the next starter) and the descriptor returned;
 * -1 when another open file description holds the lock. Released by unlinking the file, then
 * closing the descriptor; a starter that locked the unlinked file notices (its inode is no longer
 * the one at the path) and opens the path again.
 *
 * sdnotify(socket, message): one datagram to systemd's $NOTIFY_SOCKET (sd_notify(3) protocol:
 * "READY=1", "STOPPING=1"...). Node's dgram has no AF_UNIX datagram sockets. An address starting
 * with '@' is in the abstract namespace (unix(7)). Returns 0 or the errno of the failure; sending
 * from the main process itself means the unit needs no NotifyAccess=all.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>

static int get_string(napi_env env, napi_value v, char *buf, size_t cap, size_t *len) {
  if (napi_get_value_string_utf8(env, v, buf, cap, len) != napi_ok) return -1;
  return *len + 1 < cap ? 0 : -1; /* reject truncation */
}

static napi_value lc_throw(napi_env env, const char *what, int err) {
  char msg[4400];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value LockFile(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  char path[4096], text[256];
  size_t plen, tlen;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_string(env, argv[0], path, sizeof path, &plen) || get_string(env, argv[1], text, sizeof text, &tlen)) {
    napi_throw_type_error(env, NULL, "lockfile(path: string, text: string)");
    return NULL;
  }
  int fd = -1;
  for (int attempt = 0; fd < 0; attempt++) {
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return lc_throw(env, path, errno);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
      int err = errno;
      close(fd);
      if (err != EWOULDBLOCK) return lc_throw(env, path, err);
      napi_create_int32(env, -1, &out);
      return out;
    }
    /* The holder unlinks the file when it stops: if we locked a file that is no longer the one at
       `path` (opened before that unlink), a third starter could lock a new file: start again. */
    struct stat a, b;
    if (fstat(fd, &a) < 0 || lstat(path, &b) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
      close(fd);
      fd = -1;
      if (attempt >= 8) return lc_throw(env, path, EAGAIN);
    }
  }
  if (ftruncate(fd, 0) < 0 || pwrite(fd, text, tlen, 0) != (ssize_t)tlen) {
    int err = errno;
    close(fd);
    return lc_throw(env, path, err);
  }
  napi_create_int32(env, fd, &out);
  return out;
}

static napi_value SdNotify(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  char addr[sizeof(((struct sockaddr_un *)0)->sun_path) + 1], msg[1024];
  size_t alen, mlen;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2 || get_string(env, argv[0], addr, sizeof addr, &alen) || get_string(env, argv[1], msg, sizeof msg, &mlen) || alen == 0) {
    napi_throw_type_error(env, NULL, "sdnotify(socket: string, message: string)");
    return NULL;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, addr, alen);
  if (addr[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + alen + (addr[0] == '@' ? 0 : 1));
  int err = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) err = errno;
  else {
    if (sendto(fd, msg, mlen, MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0) err = errno;
    close(fd);
  }
  napi_create_int32(env, err, &out);
  return out;
}

/* Called from afpacket.c's module init. */
napi_status lifecycle_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"lockfile", NULL, LockFile, NULL, NULL, NULL, napi_default, NULL},
    {"sdnotify", NULL, SdNotify, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
