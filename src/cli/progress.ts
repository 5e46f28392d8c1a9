/**
 * A progress line on stderr: redrawn in place on a terminal, every tenth otherwise (logs
 * and CI output stay readable).
 */
export class Progress {
  private lastTenth = -1;
  private readonly started = Date.now();
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number): void {
    const fraction = this.total > 0 ? done / this.total : 1;
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? done / secs / 2 ** 20 : 0;
    const line = `${this.label} ${(fraction * 100).toFixed(0).padStart(3)}%  ${(done / 2 ** 30).toFixed(2)}/${(this.total / 2 ** 30).toFixed(2)} GiB  ${rate.toFixed(0)} MiB/s`;
    if (this.stream.isTTY) this.stream.write(`\r${line}`);
    else {
      const tenth = Math.floor(fraction * 10);
      if (tenth !== this.lastTenth) {
        this.lastTenth = tenth;
        this.stream.write(`${line}\n`);
      }
    }
  }

  done(): void {
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
