// Tests are compiled with the sources (npm run build) and jest runs the JavaScript in dist/test.
// scripts/test.mjs sets the environment dawn.node needs before jest starts: jest sandboxes
// process.env per test file, so changes made inside a test never reach native code.
export default {
  testEnvironment: 'node',
  roots: [`<rootDir>/${process.env.HLM_OUT ?? 'dist'}/test`],
  testMatch: ['**/*.test.js'],
  transform: {},
  testTimeout: 120000,
  maxWorkers: 2,
};
