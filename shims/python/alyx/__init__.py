"""alyx's helper for Python functions: ``from alyx import handler, FunctionError``.

A function decorated with ``@handler`` speaks alyx's stdin/stdout protocol, one request per
process, or many, one line each, when alyx starts the process with ``ALYX_REUSE=1``.
Standard library only, and no syntax newer than Python 3.9.
"""
from __future__ import annotations

import collections.abc
import json
import os
import sys
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any, Awaitable, Callable, Dict, List, Optional, TypeVar

# A one-shot function pays for every import on every invocation: asyncio, urllib and
# traceback (tens of milliseconds together) are imported where they are first needed.
if TYPE_CHECKING:
    import asyncio

__all__ = ["Context", "FunctionError", "Log", "handler"]

FUNCTION_ERROR = "FUNCTION_ERROR"
INVOKE_FAILED = "INVOKE_FAILED"

# The process serves many invocations over one stdin/stdout pair; alyx sets this variable.
REUSE = os.environ.get("ALYX_REUSE") == "1"


class FunctionError(Exception):
    """An error the function reports on purpose: it becomes the response's ``error``.

    ``status`` (an integer from 400 to 599) becomes the HTTP status; ``details`` is any JSON value.
    """

    def __init__(self, code: str, message: str, status: Optional[int] = None, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details

    def to_json(self) -> Dict[str, Any]:
        """The response's ``error`` object."""
        body: Dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        # bool is an int to python, never a status to alyx.
        if isinstance(self.status, int) and not isinstance(self.status, bool) and 400 <= self.status <= 599:
            body["status"] = self.status
        return body


class Log:
    """``ctx.log``: entries that go into the response's ``logs``, which alyx writes to its log."""

    def __init__(self) -> None:
        self.entries: List[Dict[str, Any]] = []

    def debug(self, message: str, data: Any = None) -> None:
        self._add("debug", message, data)

    def info(self, message: str, data: Any = None) -> None:
        self._add("info", message, data)

    def warn(self, message: str, data: Any = None) -> None:
        self._add("warn", message, data)

    def error(self, message: str, data: Any = None) -> None:
        self._add("error", message, data)

    def _add(self, level: str, message: str, data: Any) -> None:
        entry: Dict[str, Any] = {"level": level, "message": str(message)}
        if data is not None:
            # Checked now, so that a log entry can never make the whole response unwritable.
            try:
                json.dumps(data, allow_nan=False)
                entry["data"] = data
            except (TypeError, ValueError):
                entry["data"] = repr(data)
        entry["timestamp"] = _now()
        self.entries.append(entry)


class Context:
    """What alyx tells a function about its invocation (the request's ``context``), and its tools."""

    def __init__(self, request: Dict[str, Any]) -> None:
        context = request.get("context")
        fields: Dict[str, Any] = context if isinstance(context, dict) else {}
        self.request_id: Optional[str] = request.get("request_id")
        self.function: Optional[str] = request.get("function")
        self.auth: Optional[Dict[str, Any]] = fields.get("auth")
        env = fields.get("env")
        self.env: Dict[str, str] = env if isinstance(env, dict) else {}
        self.trigger: Optional[Dict[str, Any]] = fields.get("trigger")
        self.attempt: Optional[int] = fields.get("attempt")
        self.traceparent: Optional[str] = fields.get("traceparent")
        self.log = Log()
        self._alyx_url: Optional[str] = fields.get("alyx_url")
        self._internal_token: Optional[str] = fields.get("internal_token")

    def invoke(self, name: str, input: Any = None) -> Any:
        """Runs another function through alyx and returns its output; raises its error as a FunctionError.

        Blocking: from an ``async def`` handler, run it in a thread (``asyncio.to_thread``).
        """
        import urllib.error
        import urllib.parse
        import urllib.request

        if not self._alyx_url or not self._internal_token:
            raise FunctionError(INVOKE_FAILED, "ctx.invoke needs the alyx_url and internal_token that alyx puts in the request's context")
        url = "%s/api/functions/%s" % (self._alyx_url.rstrip("/"), urllib.parse.quote(name, safe=""))
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + self._internal_token}
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        body = json.dumps({} if input is None else input, allow_nan=False).encode("utf-8")
        call = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(call) as answer:
                status: int = answer.status
                raw: bytes = answer.read()
        except urllib.error.HTTPError as failure:
            # alyx answers a failed invocation with an error status and its envelope as the body.
            status = failure.code
            raw = failure.read()
        except OSError as failure:
            raise FunctionError(INVOKE_FAILED, "could not reach alyx to invoke %s: %s" % (name, failure)) from failure
        error_status = status if 400 <= status <= 599 else None
        try:
            envelope = json.loads(raw)
        except ValueError:
            envelope = None
        if not isinstance(envelope, dict):
            raise FunctionError(INVOKE_FAILED, "invoking %s answered HTTP %d without an envelope" % (name, status), error_status)
        if envelope.get("success") is True and error_status is None:
            return envelope.get("output")
        error = envelope.get("error")
        fields: Dict[str, Any] = error if isinstance(error, dict) else {"message": error}
        code = fields.get("code")
        message = fields.get("message")
        raise FunctionError(
            code if isinstance(code, str) and code else FUNCTION_ERROR,
            message if isinstance(message, str) and message else "%s failed (HTTP %d)" % (name, status),
            error_status,
            fields.get("details"),
        )


_HandlerT = TypeVar("_HandlerT", bound=Callable[[Any, Context], Any])


def handler(function: _HandlerT) -> _HandlerT:
    """Makes ``function(input, ctx)`` the process's handler, plain or ``async def``.

    In the script python runs (module ``__main__``) it starts serving at once, so it goes last
    in the file. Anywhere else, in a test that imports the module say, it returns the function
    untouched.
    """
    if getattr(function, "__module__", None) == "__main__":
        _Server(function).serve()
    return function


def _now() -> str:
    """ISO-8601 UTC with milliseconds, as JavaScript's toISOString writes it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Server:
    """Runs the handler for one request (one-shot) or for each line of stdin (reuse)."""

    def __init__(self, function: Callable[[Any, Context], Any]) -> None:
        self._function = function
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def serve(self) -> None:
        try:
            if REUSE:
                self._serve_lines(_protocol_stdout())
            else:
                self._serve_once()
        finally:
            self._close_loop()

    def _serve_once(self) -> None:
        request = _parse_request(sys.stdin.buffer.read())
        sys.stdout.write(self._respond(request) + "\n")
        sys.stdout.flush()

    def _serve_lines(self, out: IO[bytes]) -> None:
        out.write(b'{"alyx_reuse":1}\n')
        out.flush()
        source = sys.stdin.buffer
        while True:
            line = source.readline()
            if not line:
                return
            if not line.strip():
                continue
            out.write(self._respond(_parse_request(line)).encode("utf-8") + b"\n")
            out.flush()

    def _respond(self, request: Dict[str, Any]) -> str:
        """The response line: the handler's output, or its error, with the entries it logged."""
        ctx = Context(request)
        input = request.get("input")
        response: Dict[str, Any] = {"request_id": ctx.request_id}
        try:
            result = self._function({} if input is None else input, ctx)
            if isinstance(result, collections.abc.Awaitable):
                result = self._run(result)
            response.update(success=True, output=result)
        except FunctionError as failure:
            response.update(success=False, error=failure.to_json())
        except Exception as failure:
            _print_traceback(failure)
            response.update(success=False, error={"code": FUNCTION_ERROR, "message": str(failure) or type(failure).__name__})
        response["logs"] = ctx.log.entries
        try:
            return json.dumps(response, allow_nan=False)
        except (TypeError, ValueError) as failure:
            # Log entries were checked when logged, so this fallback always encodes.
            what = "output" if response["success"] else "error"
            message = "the function's %s is not JSON: %s" % (what, failure)
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
            error = {"code": FUNCTION_ERROR, "message": message}
            return json.dumps({"request_id": ctx.request_id, "success": False, "error": error, "logs": ctx.log.entries})

    def _run(self, awaitable: Awaitable[Any]) -> Any:
        """Awaits on one event loop for the life of the process, so async resources outlive an invocation."""
        import asyncio

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop.run_until_complete(_await(awaitable))

    def _close_loop(self) -> None:
        """Ends what the handlers left on the loop, as asyncio.run would."""
        loop = self._loop
        if loop is None:
            return
        import asyncio

        self._loop = None
        try:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _print_traceback(failure: BaseException) -> None:
    """The traceback on stderr, from the function's own frames: the helper's add nothing."""
    import traceback

    tb = failure.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    traceback.print_exception(type(failure), failure, tb, file=sys.stderr)
    sys.stderr.flush()


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _parse_request(raw: bytes) -> Dict[str, Any]:
    """The request document; anything else is alyx's mistake or a person typing, so the process stops."""
    try:
        request = json.loads(raw)
    except ValueError as failure:
        request = failure
    if not isinstance(request, dict):
        shown = raw[:200].decode("utf-8", "replace")
        sys.stderr.write("alyx: stdin is not a request (one JSON object, as alyx writes): %r\n" % shown)
        sys.stderr.flush()
        raise SystemExit(1)
    return request


_real_stdout: Optional[IO[bytes]] = None


def _protocol_stdout() -> IO[bytes]:
    """Keeps stdout for the protocol and points the function's prints at stderr (idempotent)."""
    global _real_stdout
    if _real_stdout is None:
        sys.stdout.flush()
        buffer = getattr(sys.stdout, "buffer", None)
        _real_stdout = buffer if buffer is not None else os.fdopen(1, "wb", closefd=False)
        sys.stdout = sys.stderr
    return _real_stdout


# In reuse mode stdout carries nothing but protocol lines, so prints that run while the
# function's module loads, before the handler is reached, go to stderr too.
if REUSE:
    _protocol_stdout()
