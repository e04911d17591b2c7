import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import ts from 'typescript';
import YAML from 'yaml';
import { main } from '../../src/cli/index';
import { resolveConfig, type AlyxConfig } from '../../src/config/resolve';
import { checkoutFiles } from '../helpers/checkout';
import { REPO_ROOT } from '../helpers/cli';
import { makeProject, removeProject } from '../helpers/project';

/**
 * The deployment files (SPEC §14): the Dockerfile with its .dockerignore, and the Kubernetes
 * manifests of deploy/kubernetes/. Nothing is built and no cluster is needed: the manifests are
 * checked against the Kubernetes API's schemas that kubernetes-models ships, the settings that
 * must agree (ports, probes, the termination grace) are compared with what alyx's own
 * configuration resolver makes of the ConfigMap, and every file, script and command the
 * Dockerfile names is looked up in this checkout, package.json and alyx's command line.
 */

const KUBERNETES_DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');
const packageJson = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
  scripts: Record<string, string>;
  files: string[];
};

// ---------------------------------------------------------------- the Dockerfile, parsed

interface Instruction {
  keyword: string;
  /** The arguments as written (continuations joined). */
  text: string;
  line: number;
}

interface Stage {
  base: string;
  name: string | null;
  instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions: continuations joined, comments dropped. */
function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  let pending = '';
  let start = 0;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line.startsWith('#') || (pending === '' && line === '')) return;
    if (pending === '') start = index + 1;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const whole = `${pending}${line}`;
    pending = '';
    const [, keyword, rest] = /^(\S+)\s*(.*)$/.exec(whole) as RegExpExecArray;
    const instruction = { keyword: keyword.toUpperCase(), text: rest, line: start };
    if (instruction.keyword === 'FROM') {
      const words = rest.split(/\s+/).filter((word) => !word.startsWith('--'));
      stages.push({ base: words[0], name: words[1]?.toUpperCase() === 'AS' ? words[2] : null, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword === 'ARG') {
        const [name, value = ''] = rest.split('=');
        args[name] = value;
      }
    } else {
      stages[stages.length - 1].instructions.push(instruction);
    }
  });
  return { args, stages };
}

/** An exec-form (JSON array) argument list, or null for the shell form. */
function execForm(text: string): string[] | null {
  return text.startsWith('[') ? (JSON.parse(text) as string[]) : null;
}

/** A COPY's --flags, sources and destination. */
function copyParts(text: string): { from: string | null; sources: string[]; destination: string } {
  const words = text.split(/\s+/);
  const flags = words.filter((word) => word.startsWith('--'));
  const paths = words.filter((word) => !word.startsWith('--'));
  const from = flags.find((flag) => flag.startsWith('--from='))?.slice('--from='.length) ?? null;
  return { from, sources: paths.slice(0, -1), destination: paths[paths.length - 1] };
}

/** The simple commands of a shell command line, each as its words (quotes removed). */
function shellCommands(line: string): string[][] {
  const commands: string[][] = [[]];
  let word: string | null = null;
  let quote: string | null = null;
  const endWord = (): void => {
    if (word !== null) commands[commands.length - 1].push(word);
    word = null;
  };
  for (let i = 0; i < line.length; i++) {
    const char = line[i];
    if (quote) {
      if (char === quote) quote = null;
      else word = (word ?? '') + char;
    } else if (char === '"' || char === "'") {
      quote = char;
      word = word ?? '';
    } else if (/\s/.test(char)) {
      endWord();
    } else if ('&|;'.includes(char)) {
      endWord();
      if (line[i + 1] === char) i++;
      commands.push([]);
    } else {
      word = (word ?? '') + char;
    }
  }
  endWord();
  return commands.filter((command) => command.length > 0);
}

const dockerfile = parseDockerfile(fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const finalStage = dockerfile.stages[dockerfile.stages.length - 1];
/** The stage that builds alyx: the one that copies package.json from the build context. */
const alyxStage = dockerfile.stages.find((stage) =>
  stage.instructions.some((each) => each.keyword === 'COPY' && copyParts(each.text).from === null && copyParts(each.text).sources.includes('package.json')),
) as Stage;
/** Where that stage puts the checkout: its WORKDIR. */
const alyxDir = alyxStage?.instructions.find((each) => each.keyword === 'WORKDIR')?.text ?? '';

const instructionsOf = (keyword: string, stages = dockerfile.stages): Array<Instruction & { stage: Stage }> =>
  stages.flatMap((stage) => stage.instructions.filter((each) => each.keyword === keyword).map((each) => ({ ...each, stage })));

/** The image's command line: ENTRYPOINT then CMD (or `args` in place of CMD, as Kubernetes does). */
function imageCommand(args?: string[]): string[] {
  const last = (keyword: string): string[] => {
    const found = instructionsOf(keyword, [finalStage]).pop();
    return found ? (execForm(found.text) ?? ['sh', '-c', found.text]) : [];
  };
  return [...last('ENTRYPOINT'), ...(args ?? last('CMD'))];
}

/** A path inside the image that lies in the alyx checkout, as a path of this repository; else null. */
function inCheckout(imagePath: string, cwd: string): string | null {
  const absolute = path.posix.resolve(cwd, imagePath);
  return absolute === alyxDir || absolute.startsWith(`${alyxDir}/`) ? path.posix.relative(alyxDir, absolute) : null;
}

/** Files that exist only after `npm ci` / `npm run build`, never in a checkout. */
const BUILT = /^(dist|build|node_modules)(\/|$)/;

// ---------------------------------------------------------------- .dockerignore

/** Whether .dockerignore leaves `file` (relative to the build context) out, as BuildKit reads it. */
const dockerignored: (file: string) => boolean = (() => {
  const rules = fs
    .readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negated = line.startsWith('!');
      const pattern = path.posix.normalize(negated ? line.slice(1) : line).replace(/^\/+|\/+$/g, '');
      return { negated, matches: picomatch(pattern, { dot: true }) };
    });
  return (file) => {
    const parts = file.split('/');
    let excluded = false;
    // The last rule that matches the path, or one of its folders, decides.
    for (const rule of rules) {
      if (parts.some((_, i) => rule.matches(parts.slice(0, i + 1).join('/')))) excluded = !rule.negated;
    }
    return excluded;
  };
})();

// ---------------------------------------------------------------- alyx's command line

/** The help commander prints for `alyx ARGS --help`, from alyx's real program (src/cli). */
async function alyxHelp(args: string[]): Promise<string> {
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const exitCode = process.exitCode;
  try {
    await main(['node', 'alyx', ...args, '--help']);
    return out.mock.calls.map(([chunk]) => String(chunk)).join('');
  } finally {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = exitCode;
  }
}

/** Checks one alyx command line (the words after `alyx`): its command exists and takes every option given. */
async function expectAlyxCommand(words: string[], where: string): Promise<void> {
  const programHelp = await alyxHelp([]);
  const commands = (programHelp.split(/^Commands:$/m)[1] ?? '')
    .split('\n')
    .map((line) => /^ {2}(\S+)/.exec(line)?.[1])
    .filter((name): name is string => Boolean(name));
  const [command, ...rest] = words;
  expect([where, command, commands.includes(command)]).toEqual([where, command, true]);
  const commandHelp = await alyxHelp([command]);
  expect(commandHelp).toMatch(new RegExp(`^Usage: alyx ${command}\\b`));
  for (const option of rest.filter((word) => word.startsWith('-')).map((word) => word.split('=')[0])) {
    const known = new RegExp(`(^|[\\s,])${option}([\\s,]|$)`, 'm');
    expect([where, option, known.test(commandHelp) || known.test(programHelp)]).toEqual([where, option, true]);
  }
}

// ---------------------------------------------------------------- the manifests

interface Manifest {
  file: string;
  doc: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- checked by the schemas below
}

const manifests: Manifest[] = fs
  .readdirSync(KUBERNETES_DIR)
  .filter((file) => /\.ya?ml$/.test(file))
  .sort()
  .flatMap((file) =>
    YAML.parseAllDocuments(fs.readFileSync(path.join(KUBERNETES_DIR, file), 'utf8'))
      .filter((doc) => doc.contents !== null)
      .map((doc) => ({ file, doc: doc.toJS() })),
  );
const apiObjects = manifests.filter(({ doc }) => doc.kind !== 'Kustomization');

function only(kind: string): Manifest['doc'] {
  const found = apiObjects.filter(({ doc }) => doc.kind === kind);
  expect([kind, found.length]).toEqual([kind, 1]);
  return found[0].doc;
}

const deployment = (): Manifest['doc'] => only('Deployment');
const container = (): Manifest['doc'] => deployment().spec.template.spec.containers[0];
const configMap = (): Manifest['doc'] => only('ConfigMap');

/**
 * Each object checked with kubernetes-models' validator (ajv, compiled from the API's OpenAPI
 * schemas): types, required fields and enums. The package is ESM only, which jest's CommonJS
 * runtime cannot load, so a node process does the checking.
 */
function schemaProblems(docs: Array<Record<string, unknown>>): Array<string | null> {
  const script = `
    let input = '';
    for await (const chunk of process.stdin) input += chunk;
    const results = [];
    for (const doc of JSON.parse(input)) {
      let Model;
      try {
        Model = (await import('kubernetes-models/' + doc.apiVersion + '/' + doc.kind))[doc.kind];
      } catch (error) {
        results.push('kubernetes-models has no schema for ' + doc.apiVersion + ' ' + doc.kind + ': ' + error.message);
        continue;
      }
      try {
        new Model(doc).validate();
        results.push(null);
      } catch (error) {
        results.push(error.message);
      }
    }
    process.stdout.write(JSON.stringify(results));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '--eval', script], {
    cwd: REPO_ROOT,
    input: JSON.stringify(docs),
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`the schema check did not run: ${run.stderr}`);
  return JSON.parse(run.stdout) as Array<string | null>;
}

/**
 * The API's schemas accept fields they do not define (as the API server does unless asked to be
 * strict), so a misspelt field would pass them silently. kubernetes-models also ships the API's
 * types: assigning each manifest, as an object literal, to its kind's type makes the TypeScript
 * compiler name every field the type does not have.
 */
function unknownFieldProblems(docs: Array<Record<string, unknown>>): string[] {
  const file = path.join(REPO_ROOT, '__deploy_manifests__.ts');
  const source = docs
    .map((doc, i) => `import type { I${doc.kind} as T${i} } from 'kubernetes-models/${doc.apiVersion}/${doc.kind}';\nexport const m${i}: T${i} = ${JSON.stringify(doc)};`)
    .join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
  };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : read(name, language, ...rest));
  return ts.getPreEmitDiagnostics(ts.createProgram([file], options, host)).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, ' '));
}

/** A container port given by name or number, as its number. */
function containerPort(port: string | number): number | undefined {
  return typeof port === 'number' ? port : container().ports.find((each: { name?: string }) => each.name === port)?.containerPort;
}

/** Seconds in a duration as alyx.yaml writes it. */
const seconds = (ms: number): number => ms / 1000;

const projects: string[] = [];
afterAll(() => projects.forEach(removeProject));

/** The configuration alyx resolves in the container: the ConfigMap's alyx.yaml, the container's env and args. */
function resolveAsDeployed(): AlyxConfig {
  const args: string[] = container().args ?? [];
  const configFile = args[args.indexOf('--config') + 1];
  expect([configFile, args.includes('--config')]).toEqual([expect.stringMatching(/^\//), true]);
  const root = makeProject({ [configFile.slice(1)]: configMap().data[path.posix.basename(configFile)] });
  projects.push(root);
  const env = Object.fromEntries((container().env ?? []).filter((each: { value?: string }) => each.value !== undefined).map((each: { name: string; value: string }) => [each.name, each.value]));
  const port = args.find((_, i) => ['-p', '--port'].includes(args[i - 1]));
  return resolveConfig({ projectDir: path.join(root, 'srv', 'app'), configFile: path.join(root, configFile), mode: 'production', env, flags: { port } });
}

/** What alyx serves when nothing configures it. */
function resolveDefaults(): AlyxConfig {
  const root = makeProject();
  projects.push(root);
  return resolveConfig({ projectDir: root, mode: 'production', env: {} });
}

// ---------------------------------------------------------------- the tests

describe('the Dockerfile', () => {
  it('copies from the build context only files a fresh clone has, and .dockerignore keeps them in the context', () => {
    const copies = instructionsOf('COPY').map((each) => ({ ...each, ...copyParts(each.text) })).filter((copy) => copy.from === null);
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      for (const source of copy.sources) {
        const files = checkoutFiles(source);
        expect([`line ${copy.line}`, source, files.length > 0]).toEqual([`line ${copy.line}`, source, true]);
        expect([`line ${copy.line}`, source, files.filter(dockerignored)]).toEqual([`line ${copy.line}`, source, []]);
      }
    }
  });

  it('copies from stages it defines before', () => {
    dockerfile.stages.forEach((stage, index) => {
      const earlier = dockerfile.stages.slice(0, index).map((each) => each.name);
      for (const copy of stage.instructions.filter((each) => each.keyword === 'COPY').map((each) => copyParts(each.text))) {
        if (copy.from !== null) expect([copy.from, earlier.includes(copy.from)]).toEqual([copy.from, true]);
      }
    });
  });

  it('leaves installed dependencies and build outputs of the host out of the build context', () => {
    for (const file of ['node_modules/yaml/package.json', 'dist/cli/index.js', 'build/Release/posix_spawn.node', 'prebuilds/linux-x64/alyx.node', '.git/HEAD']) {
      expect([file, dockerignored(file)]).toEqual([file, true]);
    }
    for (const file of ['node_modules/esbuild/package.json', 'dist/index.js']) {
      const inFunction = `examples/functions-demo/functions/hello-typescript/${file}`;
      expect([inFunction, dockerignored(inFunction)]).toEqual([inFunction, true]);
    }
  });

  it('builds alyx in a stage that copies everything package.json ships but the build outputs', () => {
    expect(alyxStage).toBeDefined();
    expect(alyxDir).toMatch(/^\//);
    const copied = alyxStage.instructions.filter((each) => each.keyword === 'COPY').flatMap((each) => copyParts(each.text).sources.map((source) => source.replace(/\/$/, '')));
    // dist/ is what `npm run build` makes; prebuilds/ is replaced by the addon built in the image.
    const shipped = packageJson.files.filter((entry) => !entry.startsWith('!')).map((entry) => entry.replace(/\/$/, ''));
    for (const entry of shipped.filter((each) => !['dist', 'prebuilds'].includes(each))) {
      expect([entry, copied.some((source) => entry === source || entry.startsWith(`${source}/`))]).toEqual([entry, true]);
    }
  });

  it('runs only package.json scripts, files of the checkout and alyx commands that exist', async () => {
    let checked = 0;
    for (const stage of dockerfile.stages) {
      let cwd = '/';
      for (const instruction of stage.instructions) {
        if (instruction.keyword === 'WORKDIR') cwd = path.posix.resolve(cwd, instruction.text);
        if (instruction.keyword !== 'RUN') continue;
        const where = `Dockerfile line ${instruction.line}`;
        for (const words of shellCommands(instruction.text)) {
          const [program, ...args] = words;
          if (program === 'npm' && ['run', 'run-script'].includes(args[0])) {
            const script = args.slice(1).find((word) => !word.startsWith('-')) as string;
            expect([where, `npm run ${script}`, script in packageJson.scripts]).toEqual([where, `npm run ${script}`, true]);
            checked++;
          }
          const scripts = program === 'node' ? args.filter((word) => !word.startsWith('-')).slice(0, 1) : program === 'ln' ? args.filter((word) => !word.startsWith('-')).slice(0, 1) : [];
          for (const script of scripts) {
            const file = inCheckout(script, cwd);
            if (file === null) continue;
            expect([where, script, BUILT.test(file) || fs.existsSync(path.join(REPO_ROOT, file))]).toEqual([where, script, true]);
            checked++;
            if (file === 'bin/alyx.js' && program === 'node') await expectAlyxCommand(args.slice(1), where);
          }
          if (program === 'alyx') await expectAlyxCommand(args, where);
        }
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it('builds the project with alyx build, then runs alyx serve', async () => {
    const runs = instructionsOf('RUN').map((each) => each.text);
    expect(runs.some((run) => /\balyx(\.js)? build\b/.test(run))).toBe(true);
    const command = imageCommand();
    expect(command.slice(0, 2)).toEqual(['alyx', 'serve']);
    await expectAlyxCommand(command.slice(1), 'ENTRYPOINT + CMD');
    // `alyx` on PATH is bin/alyx.js of the checkout.
    expect(runs.some((run) => shellCommands(run).some(([program, ...args]) => program === 'ln' && inCheckout(args.filter((word) => !word.startsWith('-'))[0] ?? '', '/') === 'bin/alyx.js' && /\/bin\/alyx$/.test(args[args.length - 1])))).toBe(true);
  });

  it('ends in an image with node and python3 that runs as a non-root user and exposes the port alyx serves by default', () => {
    expect(finalStage.base).toMatch(/^node:.*-slim$/);
    expect(instructionsOf('RUN', [finalStage]).some((run) => /apt-get install\b.*\bpython3\b/.test(run.text))).toBe(true);
    const user = instructionsOf('USER', [finalStage]).pop()?.text ?? '';
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    const exposed = instructionsOf('EXPOSE', [finalStage]).map((each) => Number(each.text.split('/')[0]));
    expect(exposed).toEqual([resolveDefaults().server.port]);
  });
});

describe('the Kubernetes manifests', () => {
  const modelsVersion = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules', 'kubernetes-models', 'package.json'), 'utf8')) as { version: string }).version;

  it('are a ConfigMap, a Deployment, a Service, a HorizontalPodAutoscaler and a PodDisruptionBudget, all in kustomization.yaml', () => {
    expect(apiObjects.map(({ doc }) => `${doc.apiVersion} ${doc.kind}`).sort()).toEqual([
      'apps/v1 Deployment',
      'autoscaling/v2 HorizontalPodAutoscaler',
      'policy/v1 PodDisruptionBudget',
      'v1 ConfigMap',
      'v1 Service',
    ]);
    const kustomization = manifests.find(({ doc }) => doc.kind === 'Kustomization');
    expect(kustomization?.doc.resources.slice().sort()).toEqual([...new Set(apiObjects.map(({ file }) => file))].sort());
  });

  it(`are valid against the Kubernetes API schemas (kubernetes-models ${modelsVersion})`, () => {
    const problems = schemaProblems(apiObjects.map(({ doc }) => doc));
    expect(apiObjects.map(({ file }, i) => [file, problems[i]])).toEqual(apiObjects.map(({ file }) => [file, null]));
  });

  it('name no field the Kubernetes API does not define', () => {
    expect(unknownFieldProblems(apiObjects.map(({ doc }) => doc))).toEqual([]);
  }, 120_000);

  it('a Deployment with a field of the wrong type, or a misspelt field, fails those checks', () => {
    const wrongType = structuredClone(deployment());
    wrongType.spec.template.spec.containers[0].ports[0].containerPort = '8090';
    expect(schemaProblems([wrongType])).toEqual([expect.stringMatching(/containerPort must be integer/)]);

    const misspelt = structuredClone(deployment());
    const probe = misspelt.spec.template.spec.containers[0].readinessProbe;
    delete misspelt.spec.template.spec.containers[0].readinessProbe;
    misspelt.spec.template.spec.containers[0].readinesProbe = probe;
    expect(unknownFieldProblems([wrongType, misspelt])).toEqual([
      expect.stringMatching(/'string' is not assignable to type 'number'/),
      expect.stringMatching(/'"readinesProbe"' does not exist in type 'IContainer'/),
    ]);
  }, 120_000);

  it('give alyx the ConfigMap as its configuration, with state in NATS JetStream (SPEC §14)', () => {
    const args: string[] = container().args;
    expect(imageCommand(args).slice(0, 2)).toEqual(['alyx', 'serve']);
    const configFile = args[args.indexOf('--config') + 1];
    const mount = container().volumeMounts.find((each: { mountPath: string }) => each.mountPath === path.posix.dirname(configFile));
    const volume = deployment().spec.template.spec.volumes.find((each: { name: string }) => each.name === mount?.name);
    expect(volume?.configMap?.name).toBe(configMap().metadata.name);
    expect(Object.keys(configMap().data)).toContain(path.posix.basename(configFile));
    expect(resolveAsDeployed().state.url).toMatch(/^nats:\/\/nats:4222$/);
  });

  it('run alyx serve with the arguments alyx takes', async () => {
    await expectAlyxCommand(imageCommand(container().args).slice(1), 'deployment.yaml args');
  });

  it('probe /api/health and /api/ready on the port alyx is configured to serve, which the Service targets', () => {
    const { port } = resolveAsDeployed().server;
    expect(container().ports.map((each: { containerPort: number }) => each.containerPort)).toEqual([port]);
    expect(container().livenessProbe.httpGet.path).toBe('/api/health');
    expect(container().readinessProbe.httpGet.path).toBe('/api/ready');
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'].filter((name) => container()[name])) {
      expect([probe, containerPort(container()[probe].httpGet.port)]).toEqual([probe, port]);
    }
    const service = only('Service');
    expect(service.spec.ports.map((each: { targetPort: string | number }) => containerPort(each.targetPort))).toEqual([port]);
  });

  it("give alyx more time to stop than preStop and server.shutdown_timeout take", () => {
    const { shutdownTimeoutMs } = resolveAsDeployed().server;
    const preStop: string[] = container().lifecycle?.preStop?.exec?.command ?? [];
    const preStopSeconds = preStop[0] === 'sleep' ? Number(preStop[1]) : 0;
    expect(deployment().spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(preStopSeconds + seconds(shutdownTimeoutMs));
  });

  it("run as the image's non-root user, with requests and limits", () => {
    const user = (instructionsOf('USER', [finalStage]).pop()?.text ?? '').split(':')[0];
    const pod = deployment().spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(user) });
    expect(container().securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(container().resources).toMatchObject({
      requests: { cpu: expect.anything(), memory: expect.anything() },
      limits: { memory: expect.anything() },
    });
  });

  it('select the Deployment’s pods from the Service and the PodDisruptionBudget, and scale the Deployment', () => {
    const labels = deployment().spec.template.metadata.labels;
    expect(deployment().spec.selector.matchLabels).toEqual(labels);
    expect(labels).toMatchObject(only('Service').spec.selector);
    expect(labels).toMatchObject(only('PodDisruptionBudget').spec.selector.matchLabels);
    const hpa = only('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment().metadata.name });
    expect(hpa.spec.minReplicas).toBe(deployment().spec.replicas);
    expect(only('PodDisruptionBudget').spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
  });
});
