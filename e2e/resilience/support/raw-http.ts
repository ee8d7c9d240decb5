import net from 'node:net';

/**
 * HTTP over a raw socket, for requests no HTTP client would send. Writes `chunks` (with
 * `gapMs` between them), then reads until the server closes or `timeoutMs` passes.
 */
export interface RawAnswer {
  /** The status code of the first response, or undefined when none came. */
  status: number | undefined;
  /** The server closed (or reset) the connection. */
  closed: boolean;
  /** The socket was still open, silent, at the timeout. */
  timedOut: boolean;
  ms: number;
  head: string;
}

export function rawRequest(
  port: number,
  chunks: (string | Buffer)[],
  options: { gapMs?: number; timeoutMs?: number } = {},
): Promise<RawAnswer> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (closed: boolean, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const head = received.subarray(0, 200).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      resolve({
        status: match ? Number(match[1]) : undefined,
        closed,
        timedOut,
        ms: Date.now() - started,
        head,
      });
    };
    const timer = setTimeout(() => finish(false, true), options.timeoutMs ?? 5000);
    socket.on('data', (data: Buffer) => {
      received = Buffer.concat([received, data]);
      // One complete response head is all these tests need.
      if (received.includes('\r\n\r\n')) finish(false, false);
    });
    socket.on('close', () => finish(true, false));
    socket.on('error', () => finish(true, false));
    socket.on('connect', () => {
      void (async () => {
        for (const chunk of chunks) {
          if (settled || socket.destroyed) return;
          // A server that already answered may reset a socket we keep writing to; that is fine.
          socket.write(chunk, () => undefined);
          if (options.gapMs) await new Promise((r) => setTimeout(r, options.gapMs));
        }
      })();
    });
  });
}
