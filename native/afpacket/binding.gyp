{
  "targets": [
    {
      "target_name": "afpacket",
      "sources": ["afpacket.c", "lifecycle.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
