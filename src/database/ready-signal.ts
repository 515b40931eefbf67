import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import type { Tx } from './transactions.js';

/** Jobs in `queue` became (or will become) claimable at `runAt` (ms since the epoch). */
export interface ReadyEvent {
  queue: string;
  runAt: number;
  count: number;
}

/** Every queue: sent when an instance may have missed events (e.g. after reconnecting). */
export const ANY_QUEUE = '*';

type Listener = (events: ReadyEvent[]) => void;

/**
 * Tells waiting claimers, on every server instance, that jobs became claimable. A unit of work
 * announces inside its transaction; listeners hear about it only after the commit, so a woken
 * claimer always finds the job (unless another claimer was faster).
 */
export abstract class ReadySignal {
  private readonly listeners = new Set<Listener>();

  abstract announce(tx: Tx, events: ReadyEvent[]): Promise<void>;

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected deliver(events: ReadyEvent[]): void {
    for (const listener of this.listeners) listener(events);
  }

  async close(): Promise<void> {}
}

/** SQLite: one server process, so the signal is an in-process call after the commit. */
export class LocalReadySignal extends ReadySignal {
  async announce(tx: Tx, events: ReadyEvent[]): Promise<void> {
    tx.afterCommit(() => this.deliver(events));
  }
}

/** NOTIFY payloads must stay under 8000 bytes; past this many queues, say "any queue". */
const MAX_EVENTS_PER_NOTIFY = 50;

/**
 * PostgreSQL: NOTIFY inside the transaction (PostgreSQL delivers it on commit, to every
 * instance LISTENing on the channel, this one included). One dedicated connection listens; if
 * it drops, it reconnects and wakes every waiter once, since events may have been missed.
 */
export class PostgresReadySignal extends ReadySignal {
  private readonly logger = new Logger('ReadySignal');
  private client: pg.Client | undefined;
  private closed = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly channel: string;

  constructor(
    private readonly url: string,
    schema: string,
  ) {
    super();
    // One channel per schema: instances on other schemas of the same database are not woken.
    // Channel names are identifiers (63 bytes at most): a long schema name is hashed.
    this.channel =
      schema.length <= 52
        ? `jobs_ready_${schema}`
        : `jobs_ready_${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
  }

  async announce(tx: Tx, events: ReadyEvent[]): Promise<void> {
    const payload =
      events.length > MAX_EVENTS_PER_NOTIFY
        ? [{ queue: ANY_QUEUE, runAt: Math.min(...events.map((e) => e.runAt)), count: Number.MAX_SAFE_INTEGER }]
        : events;
    await tx.rows(`SELECT pg_notify(?, ?)`, [this.channel, JSON.stringify(payload)]);
  }

  async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (message) => {
      if (message.channel !== this.channel) return;
      const events = parseReadyEvents(message.payload);
      // Anyone who can connect can NOTIFY this channel: a payload that is not ours is logged and
      // treated as "something may be ready" rather than allowed to throw in the socket handler.
      if (events === null) this.logger.warn(`Ignoring a malformed NOTIFY payload on ${this.channel}`);
      this.deliver(events ?? [{ queue: ANY_QUEUE, runAt: 0, count: 1 }]);
    });
    client.on('error', (error) => {
      this.logger.warn(`LISTEN connection failed (${error.message}); reconnecting`);
      this.scheduleReconnect();
    });
    await client.connect();
    await client.query(`LISTEN "${this.channel}"`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.client = client;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const broken = this.client;
    this.client = undefined;
    broken?.end().catch(() => undefined);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.listen()
        .then(() => this.deliver([{ queue: ANY_QUEUE, runAt: 0, count: Number.MAX_SAFE_INTEGER }]))
        .catch((error: unknown) => {
          this.logger.warn(`LISTEN reconnect failed (${String(error)}); retrying`);
          this.scheduleReconnect();
        });
    }, 1_000);
  }

  override async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    await this.client?.end();
  }
}

function parseReadyEvents(payload: string | undefined): ReadyEvent[] | null {
  try {
    const events: unknown = JSON.parse(payload ?? '');
    const valid =
      Array.isArray(events) &&
      events.every(
        (event) =>
          typeof event === 'object' &&
          event !== null &&
          typeof event.queue === 'string' &&
          typeof event.runAt === 'number' &&
          typeof event.count === 'number',
      );
    return valid ? (events as ReadyEvent[]) : null;
  } catch {
    return null;
  }
}
