import { parseListen } from '../config/load.js';
import { urlHost } from '../core/url-host.js';

/**
 * The URL machines are told to reach the controller at (scripts, kernels, agent, artifacts,
 * seeds). Never the request's `Host` header: anyone on the provisioning network can send any
 * Host, and whatever base a script carries receives the machine's tokens. It is the configured
 * `publicUrl`, else the local address of the connection the request came in on — one of the
 * controller's own addresses, the one this machine evidently reaches (with a wildcard listen,
 * the concrete address of that interface).
 */
export function controllerBaseUrl(
  publicUrl: string,
  conn: { protocol: string; localAddress: string | undefined; localPort: number | undefined },
  listen: string,
): string {
  if (publicUrl) return publicUrl.replace(/\/+$/, '');
  let host = conn.localAddress;
  let port = conn.localPort;
  if (!host || !port) {
    // No socket address (an in-process request): the listen address, as the listener sees it.
    const l = parseListen(listen);
    host = l.host === '0.0.0.0' || l.host === '::' ? '127.0.0.1' : l.host;
    port = l.port;
  }
  return `${conn.protocol}://${urlHost(host)}:${port}`;
}
