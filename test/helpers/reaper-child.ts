// A process that starts a silent child (`sleep 60`, its own process group, no parent-death
// signal), hands it to the ChildReaper, prints its pid and waits: a test then SIGKILLs this process
// and checks that the reaper alone kills the child.

import { spawn } from 'node:child_process';
import { ChildReaper } from '../../src/process/ffmpeg-process.js';

const child = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
child.unref();
if (child.pid !== undefined) ChildReaper.get().track(child.pid);
process.stdout.write(`${child.pid ?? 0}\n`);
setInterval(() => undefined, 1000);
