// git on a repository that lives in the lower layer: status (index refresh), commit, branch
// checkout, gc (packs written, loose objects removed from the lower), fsck; layerfs against
// kernel overlayfs. Fixed identities and dates make every commit id the same on both sides.
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

const gitEnv = (home: string): Record<string, string> => ({
  HOME: home,
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_AUTHOR_NAME: 'Ada',
  GIT_AUTHOR_EMAIL: 'ada@example.org',
  GIT_COMMITTER_NAME: 'Ada',
  GIT_COMMITTER_EMAIL: 'ada@example.org',
  GIT_AUTHOR_DATE: '2021-03-04T05:06:07Z',
  GIT_COMMITTER_DATE: '2021-03-04T05:06:07Z',
  LC_ALL: 'C',
  TZ: 'UTC',
  // Deterministic packs and no background work.
  GIT_CONFIG_COUNT: '3',
  GIT_CONFIG_KEY_0: 'init.defaultBranch',
  GIT_CONFIG_VALUE_0: 'main',
  GIT_CONFIG_KEY_1: 'pack.threads',
  GIT_CONFIG_VALUE_1: '1',
  GIT_CONFIG_KEY_2: 'gc.auto',
  GIT_CONFIG_VALUE_2: '0',
})

t.test('git in a repository from the lower layer', async t => {
  const tw = await twinMounts(t, async d => {
    const repo = join(d.lowers[0]!, 'repo')
    mkdirSync(join(d.outside, 'home'))
    mkdirSync(join(repo, 'src'), { recursive: true })
    mkdirSync(join(repo, 'docs/old'), { recursive: true })
    writeFileSync(join(repo, 'README'), 'layerfs test repo\n')
    writeFileSync(join(repo, 'src/main.c'), 'int main(void) { return 0; }\n')
    writeFileSync(join(repo, 'docs/old/notes.txt'), 'old notes\n'.repeat(50))
    const env = gitEnv(join(d.outside, 'home'))
    await shOk(
      `set -e
       git init -q .
       git add -A && git commit -qm 'first'
       for i in 1 2 3; do echo "line $i" >> src/main.c; git commit -qam "edit $i"; done
       git tag v1
       git checkout -qb feature
       git rm -rq docs/old && mkdir lib && echo 'lib' > lib/lib.c && git mv README README.md
       git add -A && git commit -qm 'feature: restructure'
       git checkout -q main
       echo 'more' >> README && git commit -qam 'main: more'
       git repack -q -d      # part packed ...
       echo 'loose' > loose.txt && git add loose.txt && git commit -qm 'loose objects'   # ... part loose`,
      { cwd: repo, env },
    )
  })
  /** Runs a step on both sides: same results, and the kernel's output matches `expect`. */
  const step = async (script: string, expect?: RegExp) => {
    const [, ov] = await tw.same(t, `cd repo && ${script}`, { code: 0, envFor: s => gitEnv(join(s.outside, 'home')) })
    if (expect) t.match(`${ov.stdout}\n${ov.stderr}`, expect, `kernel output as expected: ${script}`)
  }

  await step('git status --porcelain=v2 --branch', /^# branch\.oid [0-9a-f]{40}\n# branch\.head main\n+$/)
  await step('git log --oneline --all --graph --decorate', /feature: restructure[\s\S]*first/)
  await step('git fsck --full --no-progress')
  await step(`echo change >> README && git add README && git commit -m 'change in the mount' && git status --short`, /1 file changed, 1 insertion/)
  await step(`git checkout feature && ls -R . | grep -v '^\\.git' && cat README.md`, /lib\.c[\s\S]*Switched to branch 'feature'/)
  await step('test ! -e docs && git status --porcelain=v2 --branch && git diff --stat v1 HEAD', /notes\.txt/)
  await step(`git checkout -b topic v1 && echo topic > topic.txt && git add . && git commit -qm topic && git log --format='%H %s' main..topic`, /^[0-9a-f]{40} topic$/m)
  await step(`git merge -q --no-edit feature && git log --format='%H %P %s' -3`, /Merge branch 'feature' into topic/)
  await step('git gc -q --prune=now && git count-objects -v | grep -v size && ls .git/objects | sort', /^count: 0$/m)
  await step(`git fsck --full --no-progress && git log --format='%H %s' --all && git status --short`)
  await step('git checkout -q main && git stash list && git show --stat HEAD', /change in the mount/)

  // .git/index holds inode numbers, devices and ctimes: its bytes legitimately differ.
  await tw.sameTree(t, { ignoreContent: [/^repo\/\.git\/index$/] })
  await tw.lowersUnchanged(t)
})
