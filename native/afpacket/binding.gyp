{
  "targets": [
    {
      "target_name": "afpacket",
      "sources": ["afpacket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
