// Entry point of the `plinth` command (bin/plinth.js imports the compiled form of this file).
import { runCli } from './program.js';
import { exitQuietlyOnEpipe, flushed } from './output.js';

// A reader that closed the pipe early wanted no more: stop there, quietly and successfully.
exitQuietlyOnEpipe(process.stdout, () => process.exit(0));
exitQuietlyOnEpipe(process.stderr, () => process.exit(0));

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// Exit only once the output has left the process: into a pipe, writes may still be queued.
await flushed(process.stdout);
await flushed(process.stderr);
// `serve` returns after a clean shutdown; other commands are done. Leave no stray handle waiting.
process.exit(code);
