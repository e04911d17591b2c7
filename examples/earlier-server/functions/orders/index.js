// Reads the request on stdin and answers on stdout, as functions of the earlier server did.
let text = '';
process.stdin.on('data', (chunk) => (text += chunk));
process.stdin.on('end', () => {
  const request = JSON.parse(text);
  const { trigger } = request.context;
  const output =
    trigger.type === 'webhook'
      ? { received: JSON.parse(request.input.body), verified: request.input.verified }
      : trigger.type === 'schedule'
        ? { report: request.input.report, scheduled_at: trigger.scheduled_at }
        : { order: request.input.id, method: trigger.method };
  process.stdout.write(JSON.stringify({ request_id: request.request_id, success: true, output }));
});
