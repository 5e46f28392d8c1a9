// Entry point of the `plinth` command (bin/plinth.js imports the compiled form of this file).
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// `serve` returns after a clean shutdown; other commands are done. Leave no stray handle waiting.
process.exit(code);
