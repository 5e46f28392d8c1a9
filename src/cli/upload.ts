import type { CliContext } from './context.js';

/**
 * Sends a streamed body (an upload too large to hold in memory) with the client's
 * credentials and trust settings, and returns the JSON answer; an error answer becomes an
 * Error carrying the controller's message.
 */
export async function sendStream<T>(ctx: CliContext, method: 'POST' | 'PUT', path: string, body: ReadableStream): Promise<T> {
  const client = ctx.client();
  const res = await client.fetch(`${client.url}${path}`, {
    method,
    headers: { 'content-type': 'application/octet-stream', ...(client.authorization ? { authorization: client.authorization } : {}) },
    body,
    duplex: 'half',
  } as RequestInit);
  const text = await res.text();
  if (!res.ok) {
    const message = (() => {
      try {
        return (JSON.parse(text) as { error: { message: string } }).error.message;
      } catch {
        return `HTTP ${res.status}`;
      }
    })();
    throw new Error(message);
  }
  return JSON.parse(text) as T;
}
