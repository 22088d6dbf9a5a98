// Test images (three layers, OCI layout, docker save) built the way image tools build them: each layer a GNU tar of a directory
// (`.wh.` files for deletions, `.wh..wh..opq` for an opaque directory), an OCI image layout
// around them (layer 2 gzip-compressed), and a `docker save` tarball of the same image.
// Also: image mounts through the CLI (`layerfs mount --image`), always unmounted at teardown.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, type TeardownHost } from '../helpers/mount.js'
import { run, shOk } from '../helpers/run.js'
import { freshDir, isMounted, processesFor, registerMount, unregisterMount } from '../helpers/scratch.js'

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

/** The three layers: a base tree; deletions and changes; an opaque directory. */
export const LAYER_SCRIPTS = [
  `mkdir -p etc bin data/old/deep opq usr/share/doc
   echo 'config v1' > etc/config; echo gone > etc/remove-me; echo keep > etc/keep
   printf '#!/bin/sh\\necho hi\\n' > bin/tool; chmod 755 bin/tool
   ln bin/tool bin/tool-hardlink; ln -s ../etc/config bin/config-link
   echo old > data/old/file; echo deeper > data/old/deep/f
   echo a > opq/a; echo b > opq/b; mkdir opq/sub; echo s > opq/sub/s
   head -c 200000 /dev/urandom > usr/share/doc/big.bin
   chmod 4755 bin/tool; setfattr -n user.image -v base etc/keep`,
  `mkdir -p etc data usr/share/doc
   echo 'config v2' > etc/config; : > etc/.wh.remove-me; : > data/.wh.old
   echo added > data/new; echo notes > usr/share/doc/notes`,
  `mkdir -p opq etc
   : > opq/.wh..wh..opq; echo c > opq/c; echo third > etc/third`,
]

export interface TestImage {
  /** Layer tarballs as built (uncompressed), bottom-most first. */
  tars: string[]
  diffIds: string[]
  /** The OCI image layout directory (ref name "v1": imported as "<dir name>:v1"). */
  oci: string
  /** A docker save tarball of the same image, tagged `dockerName`. */
  dockerSave: string
  dockerName: string
  configDigest: string
}

async function tarLayer(script: string, out: string): Promise<void> {
  const dir = freshDir('layer-src')
  await shOk(script, { cwd: dir })
  await shOk(`tar --format=posix --xattrs --numeric-owner -cf '${out}' -C '${dir}' .`)
}

/** Build the test image (OCI layout named `name`, docker save tagged `name-save:1`). */
export async function buildTestImage(name = 'testimg'): Promise<TestImage> {
  const root = freshDir('image-build')
  const tars: string[] = []
  for (let i = 0; i < LAYER_SCRIPTS.length; i++) {
    const p = join(root, `layer${i}.tar`)
    await tarLayer(LAYER_SCRIPTS[i]!, p)
    tars.push(p)
  }
  const diffIds = tars.map(p => `sha256:${sha(readFileSync(p))}`)
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/tool'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  }))
  const configHex = sha(config)

  // OCI layout: blobs by digest, layer 2 gzip-compressed.
  const oci = join(root, name)
  mkdirSync(join(oci, 'blobs/sha256'), { recursive: true })
  const put = (b: Buffer): { digest: string; size: number } => {
    const hex = sha(b)
    writeFileSync(join(oci, 'blobs/sha256', hex), b)
    return { digest: `sha256:${hex}`, size: b.length }
  }
  const layerDescs = []
  for (let i = 0; i < tars.length; i++) {
    if (i === 1) {
      await shOk(`gzip -n -k -c '${tars[i]}' > '${tars[i]}.gz'`)
      layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(readFileSync(`${tars[i]}.gz`)) })
    } else {
      layerDescs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(readFileSync(tars[i]!)) })
    }
  }
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
    layers: layerDescs,
  }))
  const m = put(manifest)
  writeFileSync(join(oci, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  writeFileSync(join(oci, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }],
  }))

  // docker save (the classic layout): <id>/layer.tar, <config>.json, manifest.json, repositories.
  const save = join(root, 'save')
  mkdirSync(save)
  const layerPaths: string[] = []
  for (let i = 0; i < tars.length; i++) {
    const id = sha(`${diffIds[i]}-${i}`)
    mkdirSync(join(save, id))
    renameSync(tars[i]!, join(save, id, 'layer.tar'))
    writeFileSync(join(save, id, 'VERSION'), '1.0')
    layerPaths.push(`${id}/layer.tar`)
    tars[i] = join(save, id, 'layer.tar')
  }
  writeFileSync(join(save, `${configHex}.json`), config)
  const dockerName = `${name}-save:1`
  writeFileSync(join(save, 'manifest.json'), JSON.stringify([{ Config: `${configHex}.json`, RepoTags: [dockerName], Layers: layerPaths }]))
  writeFileSync(join(save, 'repositories'), JSON.stringify({ [`${name}-save`]: { 1: layerPaths[2]!.split('/')[0] } }))
  const dockerSave = join(root, 'save.tar')
  await shOk(`tar -cf '${dockerSave}' -C '${save}' .`)
  return { tars, diffIds, oci, dockerSave, dockerName, configDigest: `sha256:${configHex}` }
}

/** `layerfs ARGS --root ROOT`, failing the test on a non-zero exit. */
export async function cliOk(args: string[], root: string): Promise<string> {
  const r = await runCli([...args, '--root', root], { timeout: 60_000 })
  if (r.code !== 0) throw new Error(`layerfs ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
  return r.stdout
}

/** `layerfs mount --image REF --name C --root ROOT [-o OPTS] MNT`; unmounted at teardown. */
export async function mountImage(t: TeardownHost, root: string, ref: string, name: string, opts: { options?: string; mnt?: string } = {}): Promise<string> {
  const mnt = opts.mnt ?? freshDir(`mnt-${name}`)
  mkdirSync(mnt, { recursive: true })
  registerMount(mnt, 'layerfs')
  t.teardown(async () => {
    if (isMounted(mnt)) {
      const r = await runCli(['umount', mnt], { timeout: 15_000 })
      if (r.code !== 0 && isMounted(mnt)) await run('fusermount', ['-uz', mnt])
    }
    for (let i = 0; i < 50 && processesFor(mnt).length > 0; i++) await new Promise(r => setTimeout(r, 100))
    const left = processesFor(mnt)
    for (const p of left) process.kill(p, 'SIGKILL')
    unregisterMount(mnt)
    if (left.length) throw new Error(`daemon of ${mnt} did not exit`)
  })
  const args = ['mount', '--image', ref, '--name', name, '--root', root, ...(opts.options ? ['-o', opts.options] : []), mnt]
  const r = await runCli(args, { timeout: 60_000 })
  if (r.code !== 0) throw new Error(`layerfs ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
  if (!isMounted(mnt)) throw new Error(`${mnt} is not mounted after layerfs mount --image`)
  return mnt
}

export const exists = existsSync
