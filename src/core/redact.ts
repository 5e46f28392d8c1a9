/**
 * Run tickets (`plrun_…`), callback secrets (`plcb_…`) and host credentials (`plhost_…`) travel in
 * URLs or files and may be echoed in installer output; whatever writes a log line or stores a machine's output replaces them.
 */
const SECRET = /\b(plrun|plcb|plhost)_[A-Za-z0-9._~-]+/g;

export function redactSecrets(text: string): string {
  return text.replace(SECRET, '$1_[redacted]');
}
