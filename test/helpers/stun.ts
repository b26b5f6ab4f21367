// A STUN Binding request as a browser's ICE agent sends it (USERNAME, PRIORITY, MESSAGE-INTEGRITY
// with the server's ICE password, FINGERPRINT), made with werift's encoder: for the UDP mux's
// tests and bench/udp-mux.ts.

import { classes, Message, methods } from 'werift';

export function bindingRequest(username: string, password: string): Buffer {
  const m = new Message(methods.BINDING, classes.REQUEST)
    .setAttribute('USERNAME', username)
    .setAttribute('PRIORITY', 1853824767)
    .addMessageIntegrity(Buffer.from(password));
  m.addFingerprint();
  return m.bytes;
}
