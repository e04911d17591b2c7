// Development runs this file directly (alyx ships a TypeScript loader); production runs the
// bundle that `npm run build` (esbuild) writes to dist/index.js.
import path from 'node:path';

interface Request {
  input: { name?: string };
}

let data = '';
process.stdin.on('data', (chunk: Buffer) => (data += chunk));
process.stdin.on('end', () => {
  const request: Request = JSON.parse(data);
  const name = request.input.name || 'World';
  console.log(JSON.stringify({
    success: true,
    output: {
      message: `Hello, ${name}! (from TypeScript)`,
      runtime: 'node',
      ran_from: __filename.endsWith('.ts') ? 'source' : 'build',
      file: path.relative(process.cwd(), __filename),
      mode: process.env.ALYX_MODE,
    },
  }));
});
