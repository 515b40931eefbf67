import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Child-process plumbing for the tests that run real processes: the BUILT server (`node
 * dist/src/main.js`, as `npm run start:prod` does) and worker programs. Every process started here
 * is tracked, so one `killAll()` in afterAll leaves nothing running whatever the test did.
 */

export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BUILT_SERVER = join(PROJECT_ROOT, 'dist', 'src', 'main.js');

/** Every variable the server reads (SPEC §1); none may leak in from the shell running the tests. */
const CONFIG_VARIABLES = [
  'PORT',
  'HOST',
  'DATABASE_URL',
  'DATABASE_SCHEMA',
  'DATABASE_POOL_SIZE',
  'LEASE_MS',
  'REAPER_INTERVAL_MS',
  'MAX_ATTEMPTS',
  'BACKOFF_BASE_MS',
  'BACKOFF_MAX_MS',
  'MAX_PAYLOAD_BYTES',
  'SQLITE_SYNCHRONOUS',
];

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NodeProcess {
  child: ChildProcess;
  /** Resolves on 'close' rather than 'exit': by then both output streams have been read to the end. */
  exited: Promise<Exit>;
  /** The exit once it happened, else undefined (for checks that must not wait). */
  exit(): Exit | undefined;
  stdout(): string;
  stderr(): string;
  /** stderr and the tail of stdout under a heading, for failure messages. */
  output(): string;
}

const running = new Set<NodeProcess>();

/** Throws a clear message when the server has not been built (the spawning tests need dist/). */
export function assertServerBuilt(): void {
  if (!existsSync(BUILT_SERVER)) {
    throw new Error(`${BUILT_SERVER} is missing: run \`npx nest build\` first (npm test does)`);
  }
}

/** A loopback port that nothing listens on at the moment of the call. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** This process's environment with none of the server's configuration variables, plus `overrides`. */
export function serverEnv(overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const name of CONFIG_VARIABLES) delete env[name];
  return Object.assign(env, overrides);
}

/** Runs `node <script> <args>` with its output captured, tracked until it has exited. */
export function spawnNode(
  script: string,
  args: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; label?: string },
): NodeProcess {
  const child = spawn(process.execPath, [script, ...args], {
    cwd: options.cwd ?? PROJECT_ROOT,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let exit: Exit | undefined;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const label = options.label ?? script;
  const handle: NodeProcess = {
    child,
    exited: new Promise<Exit>((resolve) =>
      child.once('close', (code, signal) => {
        exit = { code, signal };
        running.delete(handle);
        resolve(exit);
      }),
    ),
    exit: () => exit,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => `--- ${label}: stderr ---\n${stderr}\n--- ${label}: stdout (tail) ---\n${stdout.slice(-1_500)}`,
  };
  running.add(handle);
  return handle;
}

/** Spawns the built server with `env` (build it with serverEnv). */
export function spawnServer(env: NodeJS.ProcessEnv, options: { cwd?: string; label?: string } = {}): NodeProcess {
  return spawnNode(BUILT_SERVER, [], { env, cwd: options.cwd, label: options.label ?? 'server' });
}

/**
 * Resolves once GET /health answers 200. Rejects at once if the server exits first, and kills it
 * and rejects if it is not healthy within `ms`.
 */
export async function waitForHealth(server: NodeProcess, baseUrl: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const exit = server.exit();
    if (exit) throw new Error(`server exited during start-up (${JSON.stringify(exit)})\n${server.output()}`);
    try {
      const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  server.child.kill('SIGKILL');
  throw new Error(`server did not answer GET /health with 200 within ${ms} ms\n${server.output()}`);
}

/** Resolves with the exit, or kills the process and rejects if it is still running after `ms`. */
export async function exitWithin(spawned: NodeProcess, ms: number): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      spawned.child.kill('SIGKILL');
      reject(new Error(`still running after ${ms} ms\n${spawned.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([spawned.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGKILLs every process started here that is still running and waits until each has exited. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...running].map((spawned) => {
      spawned.child.kill('SIGKILL');
      return spawned.exited;
    }),
  );
}
