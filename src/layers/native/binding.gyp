# Builds host.node: the syscalls Node's fs lacks (see host.c). Built by scripts/build-native.sh:
#   node-gyp rebuild --nodedir="$(npm config get nodedir)"
{
  "targets": [{
    "target_name": "host",
    "sources": ["host.c", "names.c"],
    "cflags": ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
    "defines": ["_GNU_SOURCE"]
  }]
}
