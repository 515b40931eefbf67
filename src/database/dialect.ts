/**
 * What differs between SQLite and PostgreSQL, and nothing else. Statements elsewhere are written
 * once with `?` placeholders and run through `sql()`; values cross the boundary through the
 * encode/decode helpers, so the rest of the code never asks which database it is on.
 */
export interface Dialect {
  readonly kind: 'sqlite' | 'postgres';
  /** Rewrites `?` placeholders into the driver's form. */
  sql(text: string): string;
  /** SQL expression for a fresh, unguessable lease token (128 random bits, hex). */
  readonly newLeaseTokenSql: string;
  /** Row lock clause for the claim's candidate select: lets concurrent claimers skip each other. */
  readonly skipLockedSql: string;
  encodeJson(value: unknown): unknown;
  decodeJson(value: unknown): unknown;
  decodeTimestamp(value: unknown): Date | null;
}

export const sqliteDialect: Dialect = {
  kind: 'sqlite',
  sql: (text) => text,
  // randomblob() draws from SQLite's CSPRNG, seeded by the OS.
  newLeaseTokenSql: `lower(hex(randomblob(16)))`,
  // SQLite has one writer at a time and this server serialises its units of work.
  skipLockedSql: '',
  encodeJson: (value) => (value === null || value === undefined ? null : JSON.stringify(value)),
  decodeJson: (value) => (value === null || value === undefined ? null : JSON.parse(String(value))),
  decodeTimestamp: (value) => (value === null || value === undefined ? null : new Date(String(value))),
};
