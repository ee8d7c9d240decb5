import { createHttpServer, listen } from '../backend/src/server.ts';
import { pieceNamed } from './pipeline-pieces.ts';

/**
 * One piece of the request pipeline in front of a trivial JSON route, no database
 * (bench/pipeline-pieces.ts), for `npm run bench -- --pipeline`. Run as its own process:
 * PIPELINE (the piece's name), PORT. The HTTP server is the backend's (its keep-alive settings).
 */

const piece = pieceNamed(process.env['PIPELINE'] ?? 'express');
const server = createHttpServer(piece.build());
const address = await listen(server, Number(process.env['PORT'] ?? 0), '127.0.0.1');
// To stderr: stdout is the request log of the pieces that write one, counted per request.
console.error(JSON.stringify({ msg: 'listening', port: address.port, piece: piece.name }));
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
