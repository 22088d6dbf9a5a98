// Volumes' mount points: each volume shows at a directory of the union, made (with its
// parents, like mkdir -p, in the upper layer) when the image has none, as Docker does.
import { fsError } from '../errors.js'
import { createObject } from './dir-ops.js'
import { tryResolve } from './lookup.js'
import type { Union } from './union.js'

export function makeVolumeMountPoints(main: Union): void {
  for (const v of main.volumes) {
    let path = ''
    for (const name of v.rootPath.split('/').slice(1)) {
      path += '/' + name
      // The main union's own view of the path (Union.tryResolve would answer the volume's).
      const e = tryResolve(main, main.cache, path)
      if (!e) createObject(main, path, 'mkdir', (up, p) => up.mkdir(p, 0o755))
      else if (!e.isDir) throw fsError('ENOTDIR', 'volume', path)
    }
  }
}
