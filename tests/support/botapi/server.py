"""The HTTP side: a threaded server on 127.0.0.1 that routes requests and writes replies."""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from tests.support.botapi.api import ApiCall, ApiError
from tests.support.botapi.state import EmulatorState
from tests.support.botapi.wire import parse_request

_API_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
_FILE_PATH = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
_UNAUTHORIZED = ApiError("Unauthorized", 401)
_NOT_FOUND = ApiError("Not Found", 404)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    emulator: ApiServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "BotAPIEmulator/1.0"

    def do_GET(self) -> None:
        self.server.emulator._handle(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging; ``BotAPIEmulator.calls`` records everything."""


class ApiServer(EmulatorState):
    """Serves the Bot API and file downloads over HTTP from a background thread."""

    _server: _Server | None = None
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve from a background thread."""
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._stopping = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.emulator = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="BotAPIEmulator",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Release pending long polls and shut the server down (idempotent)."""
        if self._server is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """TCP port the emulator listens on (only once started)."""
        if self._server is None:
            raise RuntimeError("emulator is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder.base_url``; PTB appends ``<token>/<method>``."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        """For ``ApplicationBuilder.base_file_url``; PTB appends ``<token>/<file_path>``."""
        return f"http://127.0.0.1:{self.port}/file/bot"

    # ------------------------------------------------------------------ requests

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        path = unquote(urlsplit(request.path).path)
        if match := _FILE_PATH.match(path):
            self._serve_file(request, match["token"], match["path"])
            return
        match = _API_PATH.match(path)
        if match is None:
            self._reply_error(request, _NOT_FOUND)
            return
        if match["token"] != self.token:
            self._reply_error(request, _UNAUTHORIZED)
            return
        method = self._methods.get(match["method"].lower())
        if method is None:
            with self._cond:
                error = _UNAUTHORIZED if self._revoked else _NOT_FOUND
            self._reply_error(request, error)
            return
        name, handler = method
        call = ApiCall(name, {}, {}, time.time())
        delay = 0.0
        try:
            call.params, call.files = parse_request(request)
            self._check_token()
            if fault := self._take_fault(name):
                raise fault
            delay = self._take_delay(name)
            call.result = handler(call.params, call.files)
            status, payload = HTTPStatus.OK, {"ok": True, "result": call.result}
        except ApiError as error:
            call.error = error.description
            status, payload = HTTPStatus(error.code), error.payload()
        except Exception as error:  # an emulator bug: make it loud in the call log too
            traceback.print_exc(file=sys.stderr)
            call.error = f"emulator crashed: {error!r}"
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            payload = {"ok": False, "error_code": 500, "description": call.error}
        with self._cond:
            self._calls.append(call)
            self._cond.notify_all()
        time.sleep(delay)  # outside the lock: a slow answer must not stall other requests
        self._reply(request, status, payload)

    def _serve_file(self, request: BaseHTTPRequestHandler, token: str, file_path: str) -> None:
        if token != self.token:
            self._reply_error(request, _UNAUTHORIZED)
            return
        with self._cond:
            stored = self._files_by_path.get(file_path)
            call = ApiCall("downloadFile", {"file_path": file_path}, {}, time.time())
            error = _UNAUTHORIZED if self._revoked else self._take_fault("downloadFile")
            if error is None and stored is None:
                error = _NOT_FOUND
            if error is None:
                call.result = len(stored.data)
            else:
                call.error = error.description
            self._calls.append(call)
            self._cond.notify_all()
        if error is not None:
            self._reply_error(request, error)
            return
        time.sleep(self._take_delay("downloadFile"))
        self._write(request, HTTPStatus.OK, "application/octet-stream", stored.data)

    def _reply_error(self, request: BaseHTTPRequestHandler, error: ApiError) -> None:
        self._reply(request, HTTPStatus(error.code), error.payload())

    def _reply(self, request: BaseHTTPRequestHandler, status: HTTPStatus, payload: dict) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._write(request, status, "application/json", body)

    @staticmethod
    def _write(
        request: BaseHTTPRequestHandler, status: HTTPStatus, content_type: str, body: bytes
    ) -> None:
        try:
            request.send_response(status)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the bot gave up on the request (e.g. a cancelled long poll)
