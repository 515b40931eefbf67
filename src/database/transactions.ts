import type { DataSource, QueryRunner } from 'typeorm';
import type { Dialect } from './dialect.js';

/** Counts the statements run, so tests can show what idle work costs. */
export class StatementCounter {
  count = 0;
}

/** One open transaction: runs statements and hands back their rows. */
export class Tx {
  private readonly committed: (() => void)[] = [];

  constructor(
    private readonly runner: QueryRunner,
    readonly dialect: Dialect,
    private readonly counter: StatementCounter,
  ) {}

  /** Runs one statement; returns the rows it selected or RETURNED (none for plain writes). */
  async rows<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
    this.counter.count++;
    const result = await this.runner.query(this.dialect.sql(text), params, true);
    return (result.records ?? []) as T[];
  }

  /** Runs `effect` once this transaction has committed (never if it rolls back). */
  afterCommit(effect: () => void): void {
    this.committed.push(effect);
  }

  /** Called by the transactor after COMMIT. */
  runAfterCommit(): void {
    for (const effect of this.committed) effect();
  }
}

/**
 * How a unit of work runs: `run(work)` gives `work` a transaction that commits when it resolves
 * and rolls back (then rethrows) when it throws. Every database access goes through here.
 */
export abstract class Transactor {
  readonly statements = new StatementCounter();
  abstract run<T>(work: (tx: Tx) => Promise<T>): Promise<T>;
  /** Resolves once no unit of work is in progress (used at shutdown). */
  abstract drain(): Promise<void>;
}

async function runInTransaction<T>(
  runner: QueryRunner,
  dialect: Dialect,
  counter: StatementCounter,
  work: (tx: Tx) => Promise<T>,
): Promise<T> {
  await runner.startTransaction();
  const tx = new Tx(runner, dialect, counter);
  let result: T;
  try {
    result = await work(tx);
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction();
    throw error;
  }
  try {
    await runner.commitTransaction();
  } catch (error) {
    // A failed COMMIT (disk full, I/O error) can leave the transaction open; on SQLite's one
    // shared connection every later unit would then nest inside it and never commit.
    if (runner.isTransactionActive) await runner.rollbackTransaction();
    throw error;
  }
  tx.runAfterCommit();
  return result;
}

/**
 * SQLite: TypeORM's better-sqlite3 driver hands every caller the same QueryRunner on one
 * connection, so two requests that each "begin" a transaction would nest (SAVEPOINTs) and one's
 * rollback would erase the other's acknowledged write. Units of work therefore run strictly one
 * after another through this promise chain. SQLite allows one writer at a time anyway, and each
 * unit is a few microseconds of synchronous work, so nothing is lost by queueing them here.
 * A unit of work must not start another one (it would wait for itself).
 */
export class SerialTransactor extends Transactor {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly dataSource: DataSource,
    private readonly dialect: Dialect,
  ) {
    super();
  }

  run<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const next = this.tail.then(async () => {
      const runner = this.dataSource.createQueryRunner();
      try {
        return await runInTransaction(runner, this.dialect, this.statements, work);
      } finally {
        await runner.release();
      }
    });
    // The chain continues whatever this unit's outcome; the caller still sees its error.
    this.tail = next.catch(() => undefined);
    return next;
  }

  async drain(): Promise<void> {
    let seen: Promise<unknown>;
    do {
      seen = this.tail;
      await seen;
    } while (seen !== this.tail);
  }
}

/**
 * PostgreSQL: each unit of work takes its own connection from the pool, so units run in
 * parallel and the database's row locks (and SKIP LOCKED) keep them apart.
 */
export class PooledTransactor extends Transactor {
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly dialect: Dialect,
  ) {
    super();
  }

  run<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
    const unit = (async () => {
      const runner = this.dataSource.createQueryRunner();
      try {
        return await runInTransaction(runner, this.dialect, this.statements, work);
      } finally {
        await runner.release();
      }
    })();
    this.inFlight.add(unit);
    const forget = () => this.inFlight.delete(unit);
    unit.then(forget, forget);
    return unit;
  }

  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }
}
