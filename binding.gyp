{
  "targets": [
    {
      "target_name": "posix_spawn",
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/posix-spawn.c"],
          "cflags": ["-Wall", "-Wextra", "-O2"]
        }]
      ]
    }
  ]
}
