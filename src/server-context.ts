// What every protocol server is given: the config in force and the shared parts it plugs into.

import type { ServerConfig } from './config/config.js';
import type { AccessLog } from './control/access-log.js';
import type { ConnectionRegistry } from './control/connections.js';
import type { FeedManager } from './feed/feed-manager.js';
import type { Logger } from './observability/logger.js';
import type { OutputRegistry } from './streams/output-registry.js';

export interface ServerContext {
  readonly config: ServerConfig;
  readonly feeds: FeedManager;
  readonly outputs: OutputRegistry;
  readonly connections: ConnectionRegistry;
  readonly log: Logger;
  readonly accessLog: AccessLog | undefined;
  /** kbit/s currently promised to readers (ffserver's MaxBandwidth accounting). */
  bandwidthInUseKbps: number;
  readonly startedAt: Date;
}
