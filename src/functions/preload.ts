import path from 'node:path';
import type { ExecutionPlan } from './entrypoint';
import type { FunctionDef } from './types';

/**
 * Node and python keep stdout open through their own teardown and the kernel's (about 10 ms
 * here) after the function's last line has run. alyx answers at end-of-file, so each gets a
 * small preload that ends stdout once no code of the function can write any more.
 */
export function argsWithPreload(runtime: FunctionDef['runtime'], plan: ExecutionPlan): readonly string[] {
  if (plan.exec !== 'interpreter') return plan.args;
  if (runtime === 'node') return ['--require', NODE_PRELOAD, ...plan.args];
  if (runtime === 'python') return [...plan.args.slice(0, -1), '-c', PYTHON_PRELOAD, ...plan.args.slice(-1)];
  return plan.args;
}

/**
 * Added to the environment of a node process started ahead of its request (a warm pool's): its
 * preload then also compiles the path a request takes in, and removes the variable before the
 * function's own code runs.
 */
export const WARM_PROCESS_VARIABLE = 'ALYX_WARM_PROCESS';

/** What a process of this plan gets in its environment when it is started ahead of its request. */
export function warmProcessEnv(runtime: FunctionDef['runtime'], plan: ExecutionPlan): Readonly<Record<string, string>> {
  return runtime === 'node' && plan.exec === 'interpreter' ? { [WARM_PROCESS_VARIABLE]: '1' } : {};
}

/** The compiled file: tests that load alyx from its TypeScript source use the build's copy too. */
const NODE_PRELOAD = path.resolve(__dirname, '..', '..', 'dist', 'functions', 'node-preload.js');

/**
 * Runs the script (the argument after `-c`) as `python3 script` would: same sys.argv, sys.path[0],
 * __file__ and __name__, in the real __main__ module. An atexit handler registered before the
 * script's own runs after all of them (they run last-in, first-out) and after non-daemon threads
 * have been joined: it flushes stdout, then points fd 1 at /dev/null. A traceback leaves out
 * the preload's own frames (the leading "<string>" ones), so it reads as python's would.
 */
const PYTHON_PRELOAD = `def _alyx_preload():
    import atexit, os, sys
    script = os.path.abspath(sys.argv[1])
    del sys.argv[0]
    if sys.path and sys.path[0] == '':
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    def end_stdout():
        try:
            sys.stdout.flush()
        except Exception:
            pass
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        except OSError:
            pass
    atexit.register(end_stdout)
    previous_hook = sys.excepthook
    def without_preload_frames(kind, value, tb):
        while tb is not None and tb.tb_frame.f_code.co_filename == '<string>':
            tb = tb.tb_next
        if isinstance(value, BaseException):
            value.__traceback__ = tb
        previous_hook(kind, value, tb)
    sys.excepthook = without_preload_frames
    main = sys.modules['__main__'].__dict__
    del main['_alyx_preload']
    main['__file__'] = script
    with open(script, 'rb') as source:
        return compile(source.read(), script, 'exec')
exec(_alyx_preload())
`;
