# Builds lowlevel.node: layerfs's FUSE session (lowlevel.c, values.c) on libfuse 2.9, the
# library fuse-native links (headers and link library from fuse-shared-library, fuse-native's
# own dependency; at run time the system's libfuse.so.2, Debian's libfuse2). Built by
# scripts/build-native.sh: node-gyp rebuild --nodedir="$(npm config get nodedir)"
{
  "targets": [{
    "target_name": "lowlevel",
    "sources": ["lowlevel.c", "values.c", "../../layers/native/names.c"],
    "include_dirs": [
      "../../layers/native",
      "<!(node -e \"require('napi-macros')\")",
      "<!(node -e \"require('fuse-shared-library/include')\")"
    ],
    "libraries": ["<!(node -e \"require('fuse-shared-library/lib')\")"],
    "cflags": ["-O2", "-Wall", "-Werror=implicit-function-declaration", "-D_FILE_OFFSET_BITS=64"],
    "defines": ["_GNU_SOURCE"]
  }]
}
