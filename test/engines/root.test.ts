// podman and buildah as root on layerfs, fuse-overlayfs and the kernel's overlay, compared
// entry by entry (suite.ts says what and against what; lib.ts is the scenario).
import t from 'tap'
import { engineSuite } from './suite.js'

await engineSuite(t, 'root')
