import { TftpServer } from '../../src/boot/tftp.js';

/** The child of test/support/tftp-process.ts: one TFTP server, until stdin closes. */
const options = JSON.parse(process.argv[2] ?? '{}') as ConstructorParameters<typeof TftpServer>[0];
const server = new TftpServer(options);
const { port } = await server.start();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.resume();
process.stdin.on('end', () => void server.stop().then(() => process.exit(0)));
