# Builds lowlevel.node: layerfs's FUSE session (lowlevel.c: the device, the dispatch, the calls
# from JS; protocol.c: the protocol's layouts, parsing and INIT; values.c). It links libfuse 2.9
# for fuse_mount and fuse_unmount only (headers and link library from fuse-shared-library,
# fuse-native's own dependency; at run time the system's libfuse.so.2, Debian's libfuse2); the
# protocol's layouts are the kernel's UAPI header, linux/fuse.h. Built by scripts/build-native.sh:
# node-gyp rebuild --nodedir="$(npm config get nodedir)"
{
  "targets": [{
    "target_name": "lowlevel",
    "sources": ["lowlevel.c", "protocol.c", "uring.c", "values.c", "../../layers/native/names.c"],
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
