// A process with Feedcast's rejection guard that leaves one promise rejection unhandled, then says
// whether it is still running: `node --import tsx test/helpers/rejection-child.ts`.

import { installRejectionGuard } from '../../src/observability/detach.js';
import { createLogger } from '../../src/observability/logger.js';

installRejectionGuard(createLogger({ format: 'json', write: (l) => process.stdout.write(l + '\n') }));
void Promise.reject(new RangeError('Invalid time value'));
setTimeout(() => {
  process.stdout.write('still serving\n');
  process.exit(0);
}, 200);
