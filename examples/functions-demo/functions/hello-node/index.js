// A function reads one JSON request on stdin and writes one JSON response on stdout.
let data = '';
process.stdin.on('data', (chunk) => (data += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(data);
  const name = request.input.name || 'World';
  console.log(
    JSON.stringify({
      success: true,
      output: {
        message: `Hello, ${name}! (from Node.js)`,
        runtime: 'node',
        ran_from: 'source',
        mode: process.env.ALYX_MODE,
      },
    }),
  );
});
