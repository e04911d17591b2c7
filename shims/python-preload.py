# alyx passes this file's text to python as `python3 -c <text> <script>`. It then runs the script
# as `python3 script` would: same sys.argv, sys.path[0], __file__ and __name__, in the real
# __main__ module. An atexit handler registered before the script's own runs after all of them
# (they run last-in, first-out) and after non-daemon threads have been joined: it flushes
# stdout, then points fd 1 at /dev/null, so alyx sees end-of-file without waiting for the
# interpreter's teardown. A traceback leaves out the preload's own frames (the leading
# "<string>" ones), so it reads as python's would.
def _alyx_preload():
    import atexit
    import os
    import sys

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
