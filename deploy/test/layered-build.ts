/**
 * `docker build` without Docker, layer by layer (issue 23 §1): each stage of a Dockerfile gets a
 * directory standing for its root filesystem, holding only what its `COPY` lines put there so far,
 * and each `RUN` step runs in it, at the stage's WORKDIR, with the stage's ENV. A step that reads a
 * file no earlier `COPY` brought fails here as it fails in Docker, which a copy of the whole tree
 * hides.
 *
 * How the stage filesystem is mapped, since there is no chroot:
 * - Absolute paths the Dockerfile owns — its WORKDIRs, absolute ENV values, and the paths other
 *   stages `COPY --from` — are rewritten to the stage's directory wherever they appear (RUN
 *   arguments, ENV values). Everything else (`/bin/sh`, the host's node and pnpm) is the host's.
 * - COPY from the build context reads the context as `.dockerignore` filters it; `COPY --from=<stage>`
 *   reads that stage's directory. Directories are copied by content, symlinks as links.
 * - Layers are cached as Docker caches them, by the instructions that led to them: Dockerfiles
 *   whose first steps are the same run those steps once. Where several Dockerfiles diverge, each
 *   branch gets a hard-linked copy of the shared layer (pnpm's node_modules already consists of
 *   hard links into its store, which nothing writes in place).
 * - Metadata-only instructions (USER, EXPOSE, HEALTHCHECK, CMD, ENTRYPOINT, LABEL, STOPSIGNAL)
 *   change no file; anything this file cannot map (ADD, SHELL, VOLUME, ARG in a stage, globs in
 *   COPY) throws rather than being approximated.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { copyBuildContext, type DockerInstruction, type DockerStage, readDockerfile } from './support.ts';

export interface LayeredBuildOptions {
  /** The build context (a repository root with a .dockerignore). */
  context: string;
  /** Where stage directories and the filtered context are made. */
  workDir: string;
  /** The environment every stage starts from (what the base image would provide). */
  baseEnv: Record<string, string>;
  /** Added to every RUN step's environment after the stage's ENV (e.g. a shared pnpm store). */
  runEnv?: Record<string, string>;
  /**
   * RUN steps that install the image's toolchain, which the host provides instead (e.g. corepack's
   * pnpm): returns true to skip one. Every other RUN step runs.
   */
  skipRun?: (command: string) => boolean;
  /** Called after each step built (not for cached ones), with the time it took including a fork. */
  onStep?: (dockerfile: string, stage: string, instruction: DockerInstruction, ms: number) => void;
}

/** One stage as built: its filesystem and the configuration its image would carry. */
export interface BuiltStage {
  name: string;
  /** The directory standing for the stage's `/`. */
  root: string;
  /** WORKDIR, inside the stage (`/app`), and mapped to the host (`<root>/app`). */
  workdir: string;
  hostWorkdir: string;
  /** ENV of the stage on top of the base environment, owned paths mapped to `root`. */
  env: Record<string, string>;
  /** The process the image starts: ENTRYPOINT + CMD (shell forms through `/bin/sh -c`). */
  command: string[];
  /** Last instruction of each metadata keyword (HEALTHCHECK, USER, …). */
  meta: Record<string, DockerInstruction>;
}

interface Step {
  key: string;
  ins: DockerInstruction;
}

interface PlannedStage {
  stage: DockerStage;
  name: string;
  steps: Step[];
  /** Absolute path prefixes this stage's filesystem owns (`/repo`, `/out`, `/pnpm`). */
  owned: string[];
}

const METADATA = new Set(['USER', 'EXPOSE', 'HEALTHCHECK', 'CMD', 'ENTRYPOINT', 'LABEL', 'STOPSIGNAL']);

export class LayeredBuild {
  private readonly contextCopy: string;
  /** Layer key → directory holding that layer's filesystem (moved along when a step takes it over). */
  private readonly layers = new Map<string, string>();
  /** Layer key → how many distinct next steps still have to be built on it. */
  private readonly pendingChildren = new Map<string, number>();
  private readonly plans = new Map<string, PlannedStage[]>();
  private counter = 0;

  /** How long filtering the build context took, ms. */
  readonly contextMs: number;

  constructor(private readonly opts: LayeredBuildOptions) {
    const t0 = Date.now();
    this.contextCopy = join(opts.workDir, 'context');
    copyBuildContext(opts.context, this.contextCopy);
    this.contextMs = Date.now() - t0;
  }

  /**
   * Plans every Dockerfile first, so the shared layers are known before anything runs: a layer
   * with one next step is built on in place, one with several is copied for all but the last.
   */
  plan(dockerfiles: string[]): void {
    const children = new Map<string, Set<string>>();
    for (const file of dockerfiles) {
      const { stages } = readDockerfile(join(this.opts.context, file));
      const planned: PlannedStage[] = [];
      for (const [i, stage] of stages.entries()) {
        const name = stage.name ?? String(i);
        // Layers are keyed by what made them: FROM, the instructions, and for COPY --from the key
        // of the stage read, so Dockerfiles with the same build stage share its layers.
        let key = `FROM ${stage.from}`;
        const steps: Step[] = [];
        for (const ins of stage.instructions) {
          const from = copyFrom(ins);
          let sourceKey = '';
          if (from !== undefined) {
            const source = planned.find((p) => p.name === from);
            if (!source) throw new Error(`${file}: COPY --from=${from}: no earlier stage of that name`);
            sourceKey = ` <${source.steps.at(-1)?.key}>`;
          }
          const parent = key;
          key = `${parent}\n${ins.keyword} ${ins.args}${sourceKey}`;
          if (!children.has(parent)) children.set(parent, new Set());
          children.get(parent)!.add(key);
          steps.push({ key, ins });
        }
        planned.push({ stage, name, steps, owned: [] });
      }
      // Owned paths: WORKDIRs, absolute ENV values, and what later stages read with COPY --from.
      for (const p of planned) {
        const owned = new Set<string>();
        for (const { ins } of p.steps) {
          if (ins.keyword === 'WORKDIR' && ins.args.startsWith('/')) owned.add(firstSegment(ins.args));
          if (ins.keyword === 'ENV')
            for (const v of Object.values(parseEnvInstruction(ins.args)))
              for (const part of v.split(':')) if (part.startsWith('/')) owned.add(firstSegment(part));
        }
        for (const q of planned)
          for (const { ins } of q.steps)
            if (copyFrom(ins) === p.name)
              for (const src of copyArgs(ins).sources) owned.add(firstSegment(src));
        p.owned = [...owned];
      }
      this.plans.set(file, planned);
    }
    for (const [parent, kids] of children) this.pendingChildren.set(parent, kids.size);
  }

  /** Builds every stage of a planned Dockerfile; returns them by name. */
  async build(file: string): Promise<Map<string, BuiltStage>> {
    const planned = this.plans.get(file);
    if (!planned) throw new Error(`${file}: not planned`);
    const built = new Map<string, BuiltStage>();
    for (const p of planned) {
      // Stage paths as the image sees them; mapped to the layer's directory when used.
      const env: Record<string, string> = { ...this.opts.baseEnv };
      let workdir = '/';
      const meta: Record<string, DockerInstruction> = {};
      // Start on the newest layer of this stage already built (by another Dockerfile with the same
      // steps). Older layers of that chain were built on in place and no longer exist as such.
      let start = -1;
      for (const [i, { key }] of p.steps.entries()) if (this.layers.has(key)) start = i;
      let parentKey = start < 0 ? `FROM ${p.stage.from}` : p.steps[start]!.key;
      let root = this.layers.get(parentKey);
      if (root === undefined) {
        root = this.newDir(p.name);
        this.layers.set(parentKey, root);
      }
      for (const [i, { key, ins }] of p.steps.entries()) {
        // ENV, WORKDIR and the rest are image configuration: they apply whether a layer is cached or not.
        if (ins.keyword === 'ENV') {
          for (const [k, v] of Object.entries(parseEnvInstruction(ins.args))) env[k] = expand(v, env);
        } else if (ins.keyword === 'WORKDIR') {
          workdir = posix.resolve(workdir, expand(ins.args, env));
        } else if (METADATA.has(ins.keyword)) {
          meta[ins.keyword] = ins;
        }
        if (i <= start) continue;
        const t0 = Date.now();
        const remaining = this.pendingChildren.get(parentKey) ?? 1;
        this.pendingChildren.set(parentKey, remaining - 1);
        const dir: string = remaining > 1 ? this.fork(root!, p.name) : root!;
        if (remaining <= 1) this.layers.delete(parentKey);
        root = dir;
        await this.apply(ins, { root: dir, workdir, env, owned: p.owned, built });
        this.opts.onStep?.(file, p.name, ins, Date.now() - t0);
        this.layers.set(key, dir);
        parentKey = key;
      }
      built.set(p.name, {
        name: p.name,
        root: root!,
        workdir,
        hostWorkdir: join(root!, workdir),
        env: Object.fromEntries(
          Object.entries(env)
            .filter(([k, v]) => this.opts.baseEnv[k] !== v)
            .map(([k, v]) => [k, mapOwned(v, p.owned, root!)]),
        ),
        command: imageCommand(meta),
        meta,
      });
    }
    return built;
  }

  private async apply(
    ins: DockerInstruction,
    s: {
      root: string;
      workdir: string;
      env: Record<string, string>;
      owned: string[];
      built: Map<string, BuiltStage>;
    },
  ): Promise<void> {
    const host = (p: string) => join(s.root, posix.resolve(s.workdir, p));
    switch (ins.keyword) {
      case 'WORKDIR':
        mkdirSync(host('.'), { recursive: true });
        return;
      case 'ENV':
        return;
      case 'COPY': {
        const from = copyFrom(ins);
        const { sources, dest } = copyArgs(ins);
        const sourceRoot = from === undefined ? this.contextCopy : s.built.get(from)?.root;
        if (sourceRoot === undefined) throw new Error(`COPY --from=${from}: stage not built`);
        if (sources.length > 1 && !dest.endsWith('/'))
          throw new Error(`COPY ${ins.args}: several sources need a destination ending in /`);
        for (const src of sources) {
          const abs = join(sourceRoot, from === undefined ? posix.normalize(`/${src}`) : src);
          // As Docker: a missing source fails the build (for the context: also one .dockerignore drops).
          if (!existsSync(abs))
            throw new Error(
              `COPY ${ins.args}: ${src} is not in ${from ? `stage ${from}` : 'the build context'}`,
            );
          const to = host(dest);
          if (statSync(abs).isDirectory()) {
            mkdirSync(to, { recursive: true });
            // The directory's content, symlinks as links (GNU cp: much faster than fs.cpSync on a node_modules).
            const r = spawnSync('cp', ['-a', `${abs}/.`, to], { encoding: 'utf8' });
            if (r.status !== 0) throw new Error(`COPY ${ins.args}: cp -a ${src}: ${r.stderr}`);
          } else {
            const target = dest.endsWith('/') || isDir(to) ? join(to, basename(abs)) : to;
            cpSync(abs, target, { verbatimSymlinks: true });
          }
        }
        return;
      }
      case 'RUN': {
        const command = ins.exec ?? ['/bin/sh', '-c', ins.args];
        if (this.opts.skipRun?.(ins.args)) return;
        const args = command.map((a) => mapOwnedTokens(a, s.owned, s.root));
        mkdirSync(host('.'), { recursive: true });
        const env = Object.fromEntries(
          Object.entries(s.env).map(([k, v]) => [k, mapOwned(v, s.owned, s.root)]),
        );
        await run(args, host('.'), { ...env, ...this.opts.runEnv });
        return;
      }
      default:
        if (METADATA.has(ins.keyword)) return;
        throw new Error(`${ins.keyword} ${ins.args}: not supported by deploy/test/layered-build.ts`);
    }
  }

  private newDir(name: string): string {
    const dir = join(this.opts.workDir, `${name}-${++this.counter}`);
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  /** A copy of a layer sharing its files' inodes: the base of one branch where Dockerfiles diverge. */
  private fork(root: string, name: string): string {
    const dir = mkdtempSync(join(this.opts.workDir, `${name}-fork-`));
    const r = spawnSync('cp', ['-al', `${root}/.`, dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cp -al ${root}: ${r.stderr}`);
    return dir;
  }
}

function copyFrom(ins: DockerInstruction): string | undefined {
  if (ins.keyword !== 'COPY') return undefined;
  return /(?:^|\s)--from=(\S+)/.exec(ins.args)?.[1];
}

function copyArgs(ins: DockerInstruction): { sources: string[]; dest: string } {
  const tokens = ins.args.split(/\s+/).filter((t) => t !== '');
  const paths: string[] = [];
  for (const t of tokens) {
    if (t.startsWith('--')) {
      if (!/^--(from|chown|chmod)=|^--link$/.test(t))
        throw new Error(`COPY ${ins.args}: flag ${t} not supported`);
      continue;
    }
    paths.push(t);
  }
  const list = paths[0]?.startsWith('[') ? (JSON.parse(paths.join(' ')) as string[]) : paths;
  if (list.length < 2) throw new Error(`COPY ${ins.args}: needs a source and a destination`);
  if (list.some((p) => /[*?[]/.test(p))) throw new Error(`COPY ${ins.args}: wildcards not supported`);
  return { sources: list.slice(0, -1), dest: list.at(-1)! };
}

/** `ENV a=1 b=2` or the legacy `ENV key value`. Quoted values are not supported (none are used). */
export function parseEnvInstruction(args: string): Record<string, string> {
  if (/["']/.test(args)) throw new Error(`ENV ${args}: quoted values not supported`);
  if (!/^\w+=/.test(args)) {
    const [k, ...v] = args.split(/\s+/);
    return { [k!]: v.join(' ') };
  }
  const env: Record<string, string> = {};
  for (const pair of args.split(/\s+/)) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new Error(`ENV ${args}: ${pair} is not key=value`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

/** `$VAR` and `${VAR}` from the environment so far, as Docker expands ENV and WORKDIR. */
const expand = (v: string, env: Record<string, string>) =>
  v.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (_, a: string | undefined, b: string | undefined) => env[(a ?? b)!] ?? '',
  );

const firstSegment = (path: string) => `/${path.split('/').filter((s) => s !== '')[0] ?? ''}`;

/** One path (or `:`-list of paths) of the stage, mapped to the host when the stage owns it. */
function mapOwned(value: string, owned: string[], root: string): string {
  return value
    .split(':')
    .map((part) => (owned.some((o) => part === o || part.startsWith(`${o}/`)) ? join(root, part) : part))
    .join(':');
}

/** Every owned absolute path inside a shell command, mapped to the host. */
function mapOwnedTokens(command: string, owned: string[], root: string): string {
  if (owned.length === 0) return command;
  const alt = owned.map((o) => o.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return command.replace(
    new RegExp(`(^|[\\s=:])((?:${alt})(?:/[^\\s:]*)?)(?=$|[\\s:])`, 'g'),
    (_, pre, path) => {
      return `${pre}${join(root, path)}`;
    },
  );
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

function imageCommand(meta: Record<string, DockerInstruction>): string[] {
  const form = (ins: DockerInstruction | undefined) =>
    ins === undefined ? [] : (ins.exec ?? ['/bin/sh', '-c', ins.args]);
  const command = [...form(meta.ENTRYPOINT), ...form(meta.CMD)];
  return command;
}

function run(args: string[], cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const [cmd, ...rest] = args;
    const child = spawn(cmd!, rest, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`RUN \`${args.at(-1)}\` exited ${code}:\n${output.slice(-3000)}`)),
    );
  });
}

/** The pnpm version a repository's package.json pins (`packageManager: pnpm@x.y.z`). */
export function pinnedPnpm(repo: string): string | undefined {
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { packageManager?: string };
  return /^pnpm@([\w.-]+)/.exec(pkg.packageManager ?? '')?.[1];
}
