{
  "targets": [
    {
      "target_name": "afpacket",
      "sources": ["afpacket.c", "util.c", "rawsock.c", "rtnl.c", "takeover.c", "backstop.c", "kstream.c", "lifecycle.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
