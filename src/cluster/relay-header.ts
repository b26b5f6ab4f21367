// The header a relay's request carries (cluster/relay.ts): its value is the name of the node that reads. The
// node read sees which node it serves (logs, egress counted per node), answers with the relay stream
// (MPEG-TS with each PES end marked) and refuses a read that would close a RelayVia loop. No dependencies:
// the HTTP listener imports it on every node, in a cluster or not.

export const RELAY_HEADER = 'x-feedcast-relay';
