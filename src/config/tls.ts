import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { PlinthError } from '../core/errors.js';
import type { Config } from './schema.js';

/**
 * TLS settings checked once, at start, so that a typo in a path or a half-configured boot
 * listener stops the controller with a message naming the setting instead of serving plain
 * HTTP by surprise.
 */
export interface ServerTls {
  cert: string;
  key: string;
}

export interface BootListenerSettings {
  listen: string;
  /** The http:// base machines use on the boot listener. */
  publicUrl: string;
}

function readPem(path: string, field: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new PlinthError('validation', `${field}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, {
      details: { field },
      cause: e,
    });
  }
  if (!text.includes(`-----BEGIN ${what}`) && !(what === 'PRIVATE KEY' && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text))) {
    throw new PlinthError('validation', `${field}: ${path} holds no PEM ${what.toLowerCase()}`, { details: { field } });
  }
  return text;
}

/** The certificate and key of the main listener, or null when it serves plain HTTP. */
export function serverTls(config: Config): ServerTls | null {
  const { cert, key } = config.tls;
  if (!cert && !key) return null;
  if (!cert || !key) {
    const field = cert ? 'tls.key' : 'tls.cert';
    throw new PlinthError('validation', `${field} is required when ${field === 'tls.key' ? 'tls.cert' : 'tls.key'} is set`, { details: { field } });
  }
  return { cert: readPem(cert, 'tls.cert', 'CERTIFICATE'), key: readPem(key, 'tls.key', 'PRIVATE KEY') };
}

function httpUrl(value: string, field: string, schemes: string[]): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new PlinthError('validation', `${field}: '${value}' is not a URL`, { details: { field } });
  }
  if (!schemes.includes(u.protocol)) {
    throw new PlinthError('validation', `${field}: '${value}' must start with ${schemes.map((s) => `${s}//`).join(' or ')}`, { details: { field } });
  }
  return value.replace(/\/+$/, '');
}

/**
 * The plain-HTTP boot listener, or null. It needs both URLs spelled out: the boot URL is
 * what firmware and OS installers fetch from, `publicUrl` is what the installer's agent
 * (which trusts the CA bundle built into it) talks to; guessing either from a request
 * would hand machines the wrong scheme.
 */
export function bootListener(config: Config): BootListenerSettings | null {
  const { bootHttpListen, bootPublicUrl } = config.tls;
  if (!bootHttpListen) {
    if (bootPublicUrl) throw new PlinthError('validation', 'tls.bootPublicUrl is set but tls.bootHttpListen is not', { details: { field: 'tls.bootHttpListen' } });
    return null;
  }
  if (!bootPublicUrl) throw new PlinthError('validation', 'tls.bootHttpListen needs tls.bootPublicUrl (the http:// URL machines reach it at)', { details: { field: 'tls.bootPublicUrl' } });
  if (!config.publicUrl) throw new PlinthError('validation', 'tls.bootHttpListen needs publicUrl (the URL the installer agent uses)', { details: { field: 'publicUrl' } });
  httpUrl(config.publicUrl, 'publicUrl', ['http:', 'https:']);
  return { listen: bootHttpListen, publicUrl: httpUrl(bootPublicUrl, 'tls.bootPublicUrl', ['http:']) };
}

/**
 * A CA bundle to trust (PEM, one or more certificates), read and checked: a file that is
 * not what it claims would otherwise surface later as an opaque handshake failure.
 */
export function readCaBundle(path: string, field = '--ca-bundle'): string {
  const text = readPem(path, field, 'CERTIFICATE');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (e) {
      throw new PlinthError('validation', `${field}: ${path} holds a certificate that does not parse (${(e as Error).message})`, { details: { field }, cause: e });
    }
  }
  if (blocks.length === 0) throw new PlinthError('validation', `${field}: ${path} holds no complete PEM certificate`, { details: { field } });
  return `${blocks.join('\n')}\n`;
}
