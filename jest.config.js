/** Unit tests need no build; integration tests drive the compiled CLI in dist/ (`make test` builds first). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', {}] },
  testTimeout: 30000,
  maxWorkers: 2,
};
