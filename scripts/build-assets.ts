/**
 * Second half of `pnpm build`: tsc emits only JavaScript, so every other file under a built
 * package's src/ (Lua scripts, JSON, …) is copied to the same relative path under its dist/, where
 * code that loads it with `new URL('./x.lua', import.meta.url)` finds it. The packages are those
 * the root tsconfig.build.json references. Tests and test helpers stay out, as in the tsc build.
 */
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Package folders of the production build, from the root tsconfig.build.json's references. */
function builtPackages(root = ROOT): string[] {
  const config = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8')) as {
    references: { path: string }[];
  };
  return config.references.map((r) => join(root, dirname(r.path)));
}

/** `rel` is relative to src/, with a leading slash. */
const isAsset = (rel: string) => !rel.endsWith('.ts') && !rel.endsWith('.md') && !rel.includes('/testing/');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

let copied = 0;
for (const pkg of builtPackages()) {
  const src = join(pkg, 'src');
  for (const file of walk(src)) {
    const rel = relative(src, file);
    if (!isAsset(`/${rel}`)) continue;
    cpSync(file, join(pkg, 'dist', rel));
    copied++;
  }
}
process.stdout.write(`build: ${copied} asset file(s) copied to dist/\n`);
