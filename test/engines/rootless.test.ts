// podman and buildah rootless (the user layerfs-test) on layerfs, fuse-overlayfs and the
// kernel's overlay, held to the root oracle (suite.ts says what and against what).
import t from 'tap'
import { engineSuite } from './suite.js'

await engineSuite(t, 'rootless')
