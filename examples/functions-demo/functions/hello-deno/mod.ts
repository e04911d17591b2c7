// deno.json beside mod.ts makes this a Deno function: alyx runs `deno run --allow-all mod.ts`.
interface Request {
  input: { name?: string };
}

const request: Request = JSON.parse(await new Response(Deno.stdin.readable).text());
const name = request.input.name || 'World';
console.log(JSON.stringify({
  success: true,
  output: {
    message: `Hello, ${name}! (from Deno)`,
    runtime: 'deno',
    ran_from: 'source',
    mode: Deno.env.get('ALYX_MODE'),
  },
}));
