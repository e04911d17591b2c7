import fs from 'node:fs';
import path from 'node:path';
import { readYamlMapping } from '../../../src/config/yaml-file';
import { makeProject, removeProject } from '../../helpers/project';

describe('readYamlMapping', () => {
  let root: string;
  beforeEach(() => {
    root = makeProject();
  });
  afterEach(() => removeProject(root));
  const read = (text: string) => {
    const file = path.join(root, 'alyx.yaml');
    fs.writeFileSync(file, text);
    return readYamlMapping(file);
  };

  it.each([
    ['an unclosed flow sequence', 'server:\n  port: 8090\n  bad: [1, 2\nfunctions: {}\n', 'line 4, column 1'],
    ['a tab for indentation', 'server:\n\tport: 8090\n', 'line 2, column 1'],
    ['a duplicate key', 'server: {}\nserver: {}\n', 'line 2, column 1'],
  ])('%s: the problem with its position, given once', (_what, text, position) => {
    const result = read(text);
    expect(result.ok).toBe(false);
    const problem = (result as { problem: string }).problem;
    expect(problem).toMatch(new RegExp(`^is not valid YAML \\(${position}: \\S`));
    expect(problem.match(/line \d+, column \d+/g)).toHaveLength(1);
    expect(problem).not.toContain('\n');
  });

  it('an empty file is an empty mapping; a key with nothing after it is not set', () => {
    expect(read('')).toEqual({ ok: true, data: {} });
    expect(read('server:\n  port:\n')).toEqual({ ok: true, data: { server: {} } });
  });
});
