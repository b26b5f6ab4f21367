// A tiny reader of classic pcap files (libpcap 2.4, Ethernet or Linux cooked, IPv4, TCP) that
// reassembles each direction of each TCP connection by sequence number: enough to pull the HTTP
// exchanges out of /work/shared/fixtures/ffm-handshake.pcap (test/fixtures/README.md).

export interface TcpFlow {
  readonly srcPort: number;
  readonly dstPort: number;
  /** The payload bytes in sequence order (retransmissions counted once). */
  readonly data: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_LINUX_SLL = 113;

export function tcpFlows(pcap: Buffer): TcpFlow[] {
  if (pcap.length < 24) throw new Error('pcap: shorter than its global header');
  const magic = pcap.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4;
  if (!le && magic !== 0xd4c3b2a1) throw new Error(`pcap: magic 0x${magic.toString(16)} (only classic pcap is read)`);
  const u32 = (at: number): number => (le ? pcap.readUInt32LE(at) : pcap.readUInt32BE(at));
  const link = u32(20);
  const linkHeader = link === LINKTYPE_ETHERNET ? 14 : link === LINKTYPE_LINUX_SLL ? 16 : -1;
  if (linkHeader < 0) throw new Error(`pcap: link type ${link} is not read`);
  const segments = new Map<string, { srcPort: number; dstPort: number; bySeq: Map<number, Buffer> }>();
  let at = 24;
  while (at + 16 <= pcap.length) {
    const captured = u32(at + 8);
    const frame = pcap.subarray(at + 16, at + 16 + captured);
    at += 16 + captured;
    const ip = frame.subarray(linkHeader);
    if (ip.length < 20 || ip[0] === undefined || ip[0] >> 4 !== 4 || ip[9] !== 6) continue; // IPv4 + TCP only
    const tcp = ip.subarray((ip[0] & 0x0f) * 4, ip.readUInt16BE(2));
    if (tcp.length < 20) continue;
    const srcPort = tcp.readUInt16BE(0);
    const dstPort = tcp.readUInt16BE(2);
    const seq = tcp.readUInt32BE(4);
    const payload = tcp.subarray(((tcp[12] ?? 0) >> 4) * 4);
    const key = `${srcPort}>${dstPort}`;
    let flow = segments.get(key);
    if (flow === undefined) segments.set(key, (flow = { srcPort, dstPort, bySeq: new Map() }));
    if (payload.length > 0) flow.bySeq.set(seq, Buffer.from(payload));
  }
  return [...segments.values()].map(({ srcPort, dstPort, bySeq }) => ({
    srcPort,
    dstPort,
    data: Buffer.concat([...bySeq.entries()].sort((a, b) => a[0] - b[0]).map(([, b]) => b)),
  }));
}

/** The HTTP exchanges of the FFM handshake capture: the GET's answer and the POST as sent. */
export function ffmHandshakeExchanges(pcap: Buffer): { getRequest: Buffer; getAnswer: Buffer; postRequest: Buffer } {
  const flows = tcpFlows(pcap);
  const toServer = flows.filter((f) => f.dstPort === 8090);
  const getRequest = toServer.find((f) => f.data.subarray(0, 4).toString('latin1') === 'GET ');
  const postRequest = toServer.find((f) => f.data.subarray(0, 5).toString('latin1') === 'POST ');
  if (getRequest === undefined || postRequest === undefined) throw new Error('pcap: no GET and POST to port 8090');
  const getAnswer = flows.find((f) => f.srcPort === 8090 && f.dstPort === getRequest.srcPort);
  if (getAnswer === undefined) throw new Error('pcap: no answer to the GET');
  return { getRequest: getRequest.data, getAnswer: getAnswer.data, postRequest: postRequest.data };
}
