/**
 * The D1 API cases run against both a real D1 binding (Shipyard's own `env.DB`, in a scratch table)
 * and the local shim inside a tenant (test/d1.e2e.test.ts embeds this function's source in the
 * tenant), so the shim is held to what the real binding does. Self-contained on purpose: it is
 * serialised with `toString()`. Timings and sizes vary, so meta is reported by its keys and the
 * counters that must match.
 */
// Helpers stay inside: the function is serialised with toString() into the tenant.
// oxlint-disable unicorn/consistent-function-scoping
export async function d1Cases(db: D1Database, table: string): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const meta = (m: Record<string, unknown>) => ({
    keys: [
      "changes",
      "last_row_id",
      "duration",
      "rows_read",
      "rows_written",
      "size_after",
      "changed_db",
      "served_by_primary",
      "total_attempts",
      "timings",
    ].filter((key) => key in m),
    changes: m["changes"],
    changed_db: m["changed_db"],
  });
  const errorOf = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      return "no error";
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return message.split(":")[0];
    }
  };
  out["exec"] = await db
    .exec(`CREATE TABLE ${table} (id INTEGER PRIMARY KEY, body TEXT, n REAL, flag INTEGER)`)
    .then((r) => r.count);
  const insert = await db.prepare(`INSERT INTO ${table} (body, n, flag) VALUES (?, ?, ?)`).bind("a", 1.5, true).run();
  out["run"] = {
    success: insert.success,
    results: insert.results,
    meta: meta(insert.meta),
    last_row_id: insert.meta.last_row_id,
  };
  const batch = await db.batch([
    db.prepare(`INSERT INTO ${table} (body, n, flag) VALUES (?1, ?2, ?3)`).bind("b", 2, false),
    db.prepare(`INSERT INTO ${table} (body, n, flag) VALUES (?, ?, ?)`).bind(null, null, null),
    db.prepare(`SELECT count(*) AS c FROM ${table}`),
  ]);
  out["batch"] = batch.map((r) => ({ success: r.success, results: r.results, changes: r.meta.changes }));
  const all = await db.prepare(`SELECT id, body, n, flag FROM ${table} ORDER BY id`).all();
  out["all"] = { success: all.success, results: all.results, meta: meta(all.meta) };
  out["first"] = await db.prepare(`SELECT body, n FROM ${table} WHERE id = ?`).bind(2).first();
  out["first_column"] = await db.prepare(`SELECT body FROM ${table} WHERE id = ?`).bind(1).first("body");
  out["first_none"] = await db.prepare(`SELECT body FROM ${table} WHERE id = ?`).bind(99).first();
  out["first_none_column"] = await db.prepare(`SELECT body FROM ${table} WHERE id = ?`).bind(99).first("body");
  out["first_bad_column"] = await errorOf(() => db.prepare(`SELECT body FROM ${table}`).first("nope"));
  out["raw"] = await db.prepare(`SELECT id, body FROM ${table} ORDER BY id`).raw();
  out["raw_columns"] = await db.prepare(`SELECT id, body FROM ${table} ORDER BY id`).raw({ columnNames: true });
  const update = await db.prepare(`UPDATE ${table} SET n = n + 1 WHERE n IS NOT NULL`).run();
  out["update"] = meta(update.meta);
  out["syntax_error"] = await errorOf(() => db.prepare("SELEC 1").all());
  out["missing_table"] = await errorOf(() => db.prepare(`SELECT * FROM ${table}_missing`).all());
  await db.exec(`CREATE TABLE ${table}_blobs (id INTEGER PRIMARY KEY, data BLOB)`);
  await db
    .prepare(`INSERT INTO ${table}_blobs (data) VALUES (?)`)
    .bind(new Uint8Array([0, 1, 254, 255]))
    .run();
  await db
    .prepare(`INSERT INTO ${table}_blobs (data) VALUES (?)`)
    .bind(new Uint8Array([7, 8]).buffer)
    .run();
  out["blobs"] = (await db.prepare(`SELECT data, length(data) AS n FROM ${table}_blobs ORDER BY id`).all()).results;
  out["undefined_bind"] = await errorOf(() => db.prepare("SELECT ?").bind(undefined).all());
  // A failing batch rolls back as a whole.
  out["batch_atomic_error"] = await errorOf(() =>
    db.batch([db.prepare(`INSERT INTO ${table} (body) VALUES ('rolled back')`), db.prepare("SELEC 1")]),
  );
  out["after_rollback"] = await db.prepare(`SELECT count(*) AS c FROM ${table} WHERE body = 'rolled back'`).first("c");
  // The Sessions API (read replication): a session holds its constraint until an answer brings a
  // bookmark, then keeps the newest one; a session resumed from a bookmark starts with it.
  const session = db.withSession("first-unconstrained");
  out["session_before_query"] = session.getBookmark();
  out["session_has_exec"] = "exec" in session;
  await session.prepare(`INSERT INTO ${table} (body) VALUES ('in a session')`).run();
  const bookmark = session.getBookmark();
  out["session_bookmark"] = typeof bookmark;
  out["session_reads_its_write"] = await session
    .prepare(`SELECT count(*) AS c FROM ${table} WHERE body = 'in a session'`)
    .first("c");
  const resumed = db.withSession(bookmark ?? undefined);
  out["resumed_starts_at_bookmark"] = resumed.getBookmark() === bookmark;
  const [, seen] = await resumed.batch([
    resumed.prepare(`INSERT INTO ${table} (body) VALUES ('resumed')`),
    resumed.prepare(`SELECT count(*) AS c FROM ${table} WHERE body IN ('in a session', 'resumed')`),
  ]);
  out["resumed_batch"] = seen?.results;
  const later = resumed.getBookmark();
  out["bookmark_moves_forward"] = bookmark !== null && later !== null && bookmark.localeCompare(later) < 0;
  out["first_primary_before_query"] = db.withSession("first-primary").getBookmark();
  out["blank_is_unconstrained"] = db.withSession("  ").getBookmark();
  out["database_has_bookmark"] = "getBookmark" in db;
  return out;
}
