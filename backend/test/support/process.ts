/** The server process exactly as `npm start` runs it, but without npm in between (signals reach node). */
export const serverCommand = {
  command: process.execPath,
  args: ['--import', 'tsx', 'backend/src/main.ts'],
};
