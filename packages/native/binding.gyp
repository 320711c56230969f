{
  "targets": [
    {
      "target_name": "emperor_native",
      "sources": ["emperor_native.c", "emperor_spawn.c", "emperor_reaper.c"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
