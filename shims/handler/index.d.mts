// The same declarations for ESM importers: TypeScript reads ./index.cjs as ./index.d.cts.
export * from './index.cjs';
