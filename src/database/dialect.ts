/**
 * What differs between SQLite and PostgreSQL, and nothing else. Statements elsewhere are written
 * once with `?` placeholders and run through `sql()`; values cross the boundary through the
 * encode/decode helpers, so the rest of the code never asks which database it is on.
 */
export interface Dialect {
  readonly kind: 'sqlite' | 'postgres';
  /** Rewrites `?` placeholders into the driver's form. */
  sql(text: string): string;
  /** SQL expression for a fresh, unguessable lease token (hex). */
  readonly newLeaseTokenSql: string;
  /** Row lock clause for candidate selects: lets concurrent claimers and reapers skip each other. */
  readonly skipLockedSql: string;
  encodeJson(value: unknown): unknown;
  decodeJson(value: unknown): unknown;
  decodeTimestamp(value: unknown): Date | null;
  /**
   * `UPDATE jobs SET <set> ...` for the rows `candidates` selects (a `SELECT id ...` that may
   * lock), re-checking `<recheck>` on each row, returning the changed rows.
   */
  updateCandidates(set: Sql, candidates: Sql, recheck: string): Sql;
  /** Taken by every creating transaction so ids become visible in order (null: not needed). */
  readonly serialiseInsertsSql: string | null;
  /** Free text (may hold NUL) as the column stores it. */
  encodeText(value: string | null): unknown;
  decodeText(value: unknown): string | null;
}

/** A statement with `?` placeholders and its parameters, in order. */
export interface Sql {
  text: string;
  params: unknown[];
}

const isNull = (value: unknown): value is null | undefined => value === null || value === undefined;

export const sqliteDialect: Dialect = {
  kind: 'sqlite',
  sql: (text) => text,
  // randomblob() draws from SQLite's CSPRNG, seeded by the OS: 128 bits.
  newLeaseTokenSql: `lower(hex(randomblob(16)))`,
  // SQLite has one writer at a time and this server serialises its units of work.
  skipLockedSql: '',
  // JSON text; SQL NULL for null.
  encodeJson: (value) => (isNull(value) ? null : JSON.stringify(value)),
  decodeJson: (value) => (isNull(value) ? null : JSON.parse(String(value))),
  // ISO 8601 UTC text, which sorts as time does.
  decodeTimestamp: (value) => (isNull(value) ? null : new Date(String(value))),
  updateCandidates: (set, candidates, recheck) => ({
    text: `UPDATE jobs SET ${set.text} WHERE id IN (${candidates.text}) AND ${recheck} RETURNING *`,
    params: [...set.params, ...candidates.params],
  }),
  serialiseInsertsSql: null,
  // SQLite TEXT holds NUL as it is.
  encodeText: (value) => value,
  decodeText: (value) => (isNull(value) ? null : String(value)),
};

export const postgresDialect: Dialect = {
  kind: 'postgres',
  sql: (text) => {
    let index = 0;
    return text.replace(/\?/g, () => `$${++index}`);
  },
  // gen_random_uuid() is built in since PostgreSQL 13 and uses the server's strong RNG: 122 bits.
  newLeaseTokenSql: `replace(gen_random_uuid()::text, '-', '')`,
  skipLockedSql: 'FOR UPDATE SKIP LOCKED',
  // `json` columns: node-postgres parses them on the way out.
  encodeJson: (value) => (isNull(value) ? null : JSON.stringify(value)),
  decodeJson: (value) => (isNull(value) ? null : value),
  decodeTimestamp: (value) => (isNull(value) ? null : value instanceof Date ? value : new Date(String(value))),
  // `id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` is not safe on PostgreSQL: the planner may
  // run the subquery more than once (or as a join that ignores the LIMIT), claiming more rows than
  // asked. A MATERIALIZED CTE is evaluated exactly once, so exactly its rows are updated.
  updateCandidates: (set, candidates, recheck) => ({
    text:
      `WITH candidates AS MATERIALIZED (${candidates.text}) ` +
      `UPDATE jobs SET ${set.text} FROM candidates WHERE jobs.id = candidates.id AND ${recheck} RETURNING jobs.*`,
    params: [...candidates.params, ...set.params],
  }),
  // Transaction-level advisory lock (any fixed key), released by COMMIT or ROLLBACK. It also
  // orders racing creates that reuse idempotency keys, so two batches cannot deadlock on them.
  serialiseInsertsSql: 'SELECT pg_advisory_xact_lock(7310115002)',
  // PostgreSQL text cannot hold NUL; free text is stored as UTF-8 bytea (see the migration).
  encodeText: (value) => (value === null ? null : Buffer.from(value, 'utf8')),
  decodeText: (value) => (isNull(value) ? null : Buffer.isBuffer(value) ? value.toString('utf8') : String(value)),
};
