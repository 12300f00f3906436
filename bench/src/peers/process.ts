/**
 * A peer (nginx, Portkey, LiteLLM) as a real child process: started without a shell, its output
 * kept for the error message should it not come up, stopped by the bench however the run ends (an
 * interrupted run stops them through {@link stopAllPeers}, like e2e's `stopAllSpawned`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { until } from '@llmgw/devkit';

export interface PeerProcess {
  name: string;
  child: ChildProcess;
  /** Its last output lines, for the error message of a failed start. */
  tail(): string;
  /** Resolves once it exited; idempotent. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<PeerProcess>();

/** `env` is added to the bench's own; a variable set to undefined there is left out. */
export function spawnPeer(
  name: string,
  command: string,
  args: string[],
  env?: Record<string, string | undefined>,
  opts: { cwd?: string } = {},
): PeerProcess {
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (c: Buffer) => {
    out = (out + c.toString()).slice(-4000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // A command that is not there at all is an 'error' event, then an exit: both end up in `exited`.
  child.on('error', (err) => keep(Buffer.from(`${err.message}\n`)));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const peer: PeerProcess = {
    name,
    child,
    tail: () => out.trim().split('\n').slice(-15).join('\n'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill(signal);
      await exited;
      live.delete(peer);
    },
  };
  live.add(peer);
  return peer;
}

/** SIGTERM to every peer process still running (an interrupted or failed run). */
export async function stopAllPeers(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop('SIGTERM')));
}

const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

/** Resolves once `peer` accepts TCP connections on 127.0.0.1:port; throws with its output otherwise. */
export async function waitForPeerPort(peer: PeerProcess, port: number, timeoutMs = 20_000): Promise<void> {
  const up = await until(
    async () => peer.child.exitCode !== null || peer.child.signalCode !== null || (await accepts(port)),
    timeoutMs,
    50,
  );
  if (!up || peer.child.exitCode !== null || peer.child.signalCode !== null) {
    // SIGTERM, not SIGKILL: an nginx master stops its worker first.
    await peer.stop('SIGTERM');
    throw new Error(`${peer.name} did not come up on 127.0.0.1:${port}:\n${peer.tail()}`);
  }
}

/** The pids whose parent is `pid` (from /proc/<pid>/stat: this kernel may lack …/children). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // After "pid (comm) ": state, then ppid (proc(5), fields 3 and 4).
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // Exited between readdir and read.
    }
  }
  return out;
}
