// sqlite3 updating a database that lives in the lower layer: rollback-journal transactions,
// then WAL mode (a shared, writable mmap of the -shm file), integrity checks, VACUUM, ATTACH;
// layerfs against kernel overlayfs.
import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { shOk } from '../helpers/run.js'
import { twinMounts } from '../helpers/twin.js'

const CREATE = `
PRAGMA page_size = 4096;
CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL, blob BLOB);
CREATE INDEX item_name ON item(name);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
INSERT INTO item SELECT i, 'item-' || (i % 97), i % 13, zeroblob(i % 300) FROM n;
CREATE TABLE log (at INTEGER, msg TEXT);
`

t.test('sqlite3 on a database from the lower layer', async t => {
  const tw = await twinMounts(t, async d => {
    const db = join(d.lowers[0]!, 'db')
    mkdirSync(db)
    await shOk(`sqlite3 app.db <<'EOF'\n${CREATE}\nEOF\nsqlite3 ref.db 'CREATE TABLE ref (k TEXT PRIMARY KEY, v TEXT); INSERT INTO ref VALUES ("a", "1"), ("b", "2");'`, { cwd: db })
  })
  const q = async (sql: string, expected?: string) => {
    const [, ov] = await tw.same(t, `cd db && sqlite3 -bail app.db <<'EOF'\n${sql}\nEOF`, { code: 0 })
    if (expected !== undefined) t.equal(ov.stdout, expected, `kernel: ${sql.trim().split('\n')[0]}`)
  }

  await q('SELECT count(*), sum(qty), sum(length(blob)) FROM item;', '3000|17995|448500\n')
  await q('PRAGMA journal_mode;', 'delete\n')
  await q(`BEGIN; UPDATE item SET qty = qty + 100 WHERE id % 7 = 0; DELETE FROM item WHERE id > 2900;
           INSERT INTO log VALUES (1, 'first update'); COMMIT;
           SELECT count(*), sum(qty) FROM item;`, '2900|58795\n')
  await q(`BEGIN; DELETE FROM item; ROLLBACK; SELECT count(*) FROM item;`, '2900\n')
  await q('PRAGMA integrity_check;', 'ok\n')
  await tw.same(t, 'ls db', { code: 0 })

  // WAL: the -wal and -shm files are created next to the database, -shm is mmap()ed shared.
  await q(`PRAGMA journal_mode = WAL; INSERT INTO log VALUES (2, 'in wal');
           UPDATE item SET name = upper(name) WHERE id < 500; SELECT count(*) FROM item WHERE name GLOB 'ITEM-*';`, 'wal\n499\n')
  await tw.same(t, `cd db && sqlite3 app.db "SELECT msg FROM log ORDER BY at" & sqlite3 app.db "SELECT count(*) FROM item" ; wait`, { code: 0 })
  await q(`PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE; PRAGMA integrity_check;`, '0|0|0\ndelete\nok\n')
  await q(`ATTACH 'ref.db' AS r; INSERT INTO r.ref VALUES ('c', '3'); SELECT group_concat(k || v) FROM r.ref;`, 'a1,b2,c3\n')
  await q(`VACUUM; PRAGMA integrity_check; SELECT count(*), sum(qty) FROM item;`, 'ok\n2900|58795\n')
  await tw.same(t, 'cd db && ls && sqlite3 app.db .dump | sha256sum && sqlite3 ref.db .dump', { code: 0 })

  await tw.sameTree(t)
  await tw.sameUpper(t)
  await tw.lowersUnchanged(t)
})
