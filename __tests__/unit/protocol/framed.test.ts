import { HANDSHAKE, LineFramer, readFramedLine } from '../../../src/protocol/framed';

describe('readFramedLine', () => {
  it('knows the handshake, with or without blanks around it', () => {
    expect(readFramedLine(HANDSHAKE, null)).toEqual({ kind: 'handshake' });
    expect(readFramedLine(` ${HANDSHAKE}\r`, 'r1')).toEqual({ kind: 'handshake' });
  });

  it('takes the response that names the request, or names none and says whether it succeeded', () => {
    expect(readFramedLine('{"request_id":"r1","success":true,"output":{"a":1}}', 'r1')).toEqual({ kind: 'response', response: { success: true, output: { a: 1 }, logs: [] } });
    expect(readFramedLine('{"success":false,"error":{"code":"X","message":"m","status":418}}', 'r1')).toEqual({
      kind: 'response',
      response: { success: false, error: { code: 'X', message: 'm' }, status: 418, logs: [] },
    });
  });

  it.each([
    ['another request\'s response', '{"request_id":"r2","success":true}', 'r1'],
    ['an object that is no response', '{"hello":"world"}', 'r1'],
    ['text', 'hello', 'r1'],
    ['a JSON array', '[1,2]', 'r1'],
    ['broken JSON', '{"success": tru}', 'r1'],
    ['a response while no request runs', '{"request_id":"r1","success":true}', null],
  ])('calls %s something else', (_what, line, requestId) => {
    expect(readFramedLine(line, requestId)).toEqual({ kind: 'other' });
  });
});

describe('LineFramer', () => {
  const frame = (max: number) => {
    const lines: string[] = [];
    let overflows = 0;
    const framer = new LineFramer(max, (line) => lines.push(line), () => overflows++);
    return { framer, lines, overflows: () => overflows };
  };

  it('splits lines across chunks, keeps multi-byte characters whole, and counts what waits for its newline', () => {
    const { framer, lines } = frame(1024);
    const text = Buffer.from('{"a":"é"}\n{"b":', 'utf8');
    framer.push(text.subarray(0, 8));
    framer.push(text.subarray(8));
    expect(lines).toEqual(['{"a":"é"}']);
    expect(framer.pendingBytes).toBe(5);
    framer.push(Buffer.from('2}\n\n'));
    expect(lines).toEqual(['{"a":"é"}', '{"b":2}', '']);
    expect(framer.pendingBytes).toBe(0);
  });

  it('reports a line over the cap once, whether it ended or not, and splits nothing after it', () => {
    const ended = frame(8);
    ended.framer.push(Buffer.from('123456789\nok\n'));
    expect({ lines: ended.lines, overflows: ended.overflows() }).toEqual({ lines: [], overflows: 1 });
    const open = frame(8);
    open.framer.push(Buffer.from('12345'));
    open.framer.push(Buffer.from('6789'));
    open.framer.push(Buffer.from('\nok\n'));
    expect({ lines: open.lines, overflows: open.overflows() }).toEqual({ lines: [], overflows: 1 });
  });
});
