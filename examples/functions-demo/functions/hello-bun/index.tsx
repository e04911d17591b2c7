// index.tsx makes this a Bun function: alyx runs `bun run index.tsx`, TypeScript and all.
interface Request {
  input: { name?: string };
}

const request: Request = JSON.parse(await Bun.stdin.text());
const name = request.input.name || 'World';
console.log(JSON.stringify({
  success: true,
  output: {
    message: `Hello, ${name}! (from Bun)`,
    runtime: 'bun',
    ran_from: 'source',
    mode: process.env.ALYX_MODE,
  },
}));
