// The context server.ts builds once and hands to every part: the config in force and the owners. Each
// layer takes it through its own interface (access/ AccessDeps, protocols/ ProtocolContext, control/
// ControlContext); this, the widest, is what control/ reads.

import type { ControlContext } from './control/control-context.js';

export type ServerContext = ControlContext;
