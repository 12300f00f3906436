/**
 * What `pnpm start` prints: each process's JSON log lines as one readable line under its name,
 * whatever the level, coloured on a terminal.
 */
const COLORS: Record<string, string> = {
  api: '\x1b[36m',
  worker: '\x1b[35m',
  sim: '\x1b[33m',
  start: '\x1b[32m',
};
const LEVEL_COLORS: Record<string, string> = { warn: '\x1b[33m', error: '\x1b[31m', fatal: '\x1b[31m' };
const RESET = '\x1b[0m';
const tty = process.stdout.isTTY;
const paint = (color: string | undefined, s: string) => (tty && color ? `${color}${s}${RESET}` : s);
const HIDDEN = new Set(['time', 'level', 'service', 'instance', 'msg', 'pid', 'hostname']);

export function print(name: string, line: Record<string, unknown>): void {
  const level = String(line.level ?? 'info');
  const time =
    typeof line.time === 'string' ? line.time.slice(11, 23) : new Date().toISOString().slice(11, 23);
  const fields = Object.entries(line)
    .filter(([k, v]) => !HIDDEN.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const tag = paint(COLORS[name], `[${name.padEnd(6)}]`);
  process.stdout.write(
    `${tag} ${time} ${paint(LEVEL_COLORS[level], level.toUpperCase().padEnd(5))} ${line.msg ?? ''} ${fields}\n`,
  );
}

/** A line of start.ts's own. */
export const say = (msg: string) => print('start', { msg });
