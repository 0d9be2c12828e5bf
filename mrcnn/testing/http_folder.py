"""A folder served over HTTP on 127.0.0.1, in a thread: remote images for tests and demos
without any network (`with FolderServer(folder) as server: ... server.url ...`)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from typing import Any


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; counts the files asked for; logs nothing."""

    requests: list[str]
    held: dict[str, threading.Event]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.requests.append(self.path)
        gate = self.held.get(self.path)
        if gate is not None:
            gate.wait(HOLD_LIMIT_S)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


#: The longest a held file keeps its reader waiting.
HOLD_LIMIT_S = 60.0


class FolderServer:
    """`folder` over HTTP at `url` (on 127.0.0.1; `port` 0: a free one) until `stop()`.
    `requests` lists the paths asked for, in order (directory listings included). A server
    made again on the port of a stopped one serves the same URLs (the storage is back)."""

    def __init__(self, folder: str | Path, port: int = 0):
        self.folder = Path(folder)
        self.requests: list[str] = []
        self._held: dict[str, threading.Event] = {}
        handler = type("Handler", (_Handler,), {"requests": self.requests,
                                                "held": self._held})
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), functools.partial(handler, directory=str(self.folder)))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FolderServer:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="folder-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering (the port is closed: clients get "connection refused")."""
        for gate in self._held.values():
            gate.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def hold(self, name: str) -> threading.Event:
        """Make the file `name` (a path under the folder, as in its URL) answer only once the
        returned event is set: a slow storage, for as long as a test needs one."""
        gate = threading.Event()
        self._held["/" + name.lstrip("/")] = gate
        return gate

    def file_requests(self) -> list[str]:
        """The files asked for (not the folder listings)."""
        return [r for r in self.requests if not r.endswith("/")]

    def __enter__(self) -> FolderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
