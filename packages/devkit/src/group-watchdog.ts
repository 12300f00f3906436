/**
 * Run by {@link guardProcessGroups} (process-groups.ts), never imported. Reads `+<pid>` and
 * `-<pid>` lines on stdin: the process groups its parent started and stopped. When stdin ends —
 * the parent is gone, however it died, SIGKILL included, since the kernel closes its end of the
 * pipe — it stops the groups still listed, newest first (the order a stack stops in: the api
 * before the worker it needs to finish its streams, Redis last), each with SIGTERM and, after
 * `argv[2]` ms without exiting, SIGKILL. Then it exits.
 */
import { readdirSync, readFileSync } from 'node:fs';

const graceMs = Number(process.argv[2] ?? 30_000);
const groups: number[] = [];
let pending = '';

/**
 * Whether a process of the group still runs. The orphans' new parent (init, or a container's
 * PID 1) may be slow to reap them, and a zombie counts for kill(0): on Linux, /proc tells.
 */
const alive = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  try {
    return readdirSync('/proc').some((pid) => {
      if (!/^\d+$/.test(pid)) return false;
      try {
        // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(pgrp) === pgid && state !== 'Z';
      } catch {
        return false;
      }
    });
  } catch {
    return true;
  }
};
const signal = (pgid: number, sig: NodeJS.Signals) => {
  try {
    process.kill(-pgid, sig);
  } catch {
    // Already gone.
  }
};

process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  pending += chunk;
  const lines = pending.split('\n');
  pending = lines.pop() ?? '';
  for (const line of lines) {
    const pid = Number(line.slice(1));
    if (!Number.isInteger(pid) || pid <= 0) continue;
    if (line[0] === '+') groups.push(pid);
    else if (line[0] === '-' && groups.includes(pid)) groups.splice(groups.indexOf(pid), 1);
  }
});
process.stdin.on('end', async () => {
  for (const pgid of groups.reverse()) {
    if (!alive(pgid)) continue;
    signal(pgid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (alive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    signal(pgid, 'SIGKILL');
  }
  process.exit(0);
});
