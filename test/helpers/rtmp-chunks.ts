// Hand-made RTMP chunks (Adobe RTMP specification 1.0, 5.3.1), for tests that send hostile chunk
// streams as bytes.

/** A type 0 header on chunk stream `csid` (2..63) and `payload` (one chunk). */
export function chunk0(csid: number, typeId: number, length: number, payload: Buffer, streamId = 0): Buffer {
  const h = Buffer.alloc(12);
  h[0] = csid; // fmt 0
  h.writeUIntBE(0, 1, 3); // timestamp
  h.writeUIntBE(length, 4, 3); // message length
  h[7] = typeId;
  h.writeUInt32LE(streamId, 8);
  return Buffer.concat([h, payload]);
}
