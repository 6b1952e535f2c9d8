#!/usr/bin/env node
// The `litespark` command. The TypeScript sources are compiled to dist/ by `npm ci` (prepare).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('litespark: dist/ is missing; run `npm ci` (or `npm run build`) in the package directory first\n');
  process.exit(1);
}
const { run } = await import(main.href);
process.exitCode = await run(process.argv);
