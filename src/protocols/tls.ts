// TLS certificates for HTTPS and RTMPS (docs/security.md): the PEM files named by SSLCertificate and
// SSLCertificateKey, loaded at start (a bad pair stops the start), then re-read when either file
// changes (polled) or on SIGHUP; a bad new pair is logged and the running one kept.

import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContextOptions } from 'node:tls';
import { ConfigError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { detach } from '../observability/detach.js';

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

type Listener = (options: SecureContextOptions) => void;

export class CertificateStore {
  private readonly files: CertificateFiles;
  private readonly log: Logger;
  private current: SecureContextOptions | undefined;
  private readonly listeners = new Set<Listener>();
  private watching = false;
  private reloading: Promise<boolean> | undefined;

  private constructor(files: CertificateFiles, log: Logger) {
    this.files = files;
    this.log = log;
  }

  /** Loads the pair; throws ConfigError naming the file when it cannot be used. */
  static async load(files: CertificateFiles, log: Logger): Promise<CertificateStore> {
    const store = new CertificateStore(files, log);
    store.current = await store.read();
    return store;
  }

  /** cert and key, for tls.createServer / server.setSecureContext. */
  get options(): SecureContextOptions {
    if (this.current === undefined) throw new Error('certificates not loaded');
    return this.current;
  }

  /** Called with the new pair after every successful reload. Returns an unsubscribe function. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads both files; on success tells the listeners. A bad pair is logged and the old one kept. */
  reload(): Promise<boolean> {
    this.reloading ??= (async () => {
      try {
        const next = await this.read();
        this.current = next;
        for (const l of this.listeners) l(next);
        this.log.info('TLS certificate reloaded', { cert: this.files.certFile });
        return true;
      } catch (err) {
        this.log.error('TLS certificate reload failed; the running certificate stays', {
          reason: err instanceof Error ? err.message : String(err),
        });
        return false;
      } finally {
        this.reloading = undefined;
      }
    })();
    return this.reloading;
  }

  /** Polls both files (every `intervalMs`) and reloads when one changes. */
  watch(intervalMs = 2000): void {
    if (this.watching) return;
    this.watching = true;
    const changed = (curr: Stats, prev: Stats): void => {
      if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino)
        detach(this.reload(), this.log, 'certificate reload');
    };
    for (const f of [this.files.certFile, this.files.keyFile]) watchFile(f, { interval: intervalMs, persistent: false }, changed);
  }

  close(): void {
    if (!this.watching) return;
    this.watching = false;
    unwatchFile(this.files.certFile);
    unwatchFile(this.files.keyFile);
    this.listeners.clear();
  }

  private async read(): Promise<SecureContextOptions> {
    const readPem = async (path: string, what: string): Promise<Buffer> => {
      try {
        return await readFile(path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'error';
        throw new ConfigError(path, `${what} ${path} cannot be read (${code})`);
      }
    };
    const cert = await readPem(this.files.certFile, 'SSLCertificate');
    const key = await readPem(this.files.keyFile, 'SSLCertificateKey');
    try {
      createSecureContext({ cert, key });
    } catch (err) {
      throw new ConfigError(
        this.files.certFile,
        `SSLCertificate and SSLCertificateKey do not make a usable pair: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    return { cert, key };
  }
}
