// Bundles the agent (src/agent/main.ts and what it imports: src/agent, src/core) into one
// file, dist/agent/agent.mjs, which the installer carries.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
await build({
  entryPoints: [new URL('../src/agent/main.ts', import.meta.url).pathname],
  outfile: new URL('../dist/agent/agent.mjs', import.meta.url).pathname,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node18',
  minify: false,
  sourcemap: false,
  legalComments: 'none',
  define: { PLINTH_AGENT_VERSION: JSON.stringify(pkg.version) },
  logLevel: 'warning',
});
