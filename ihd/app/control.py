"""A local control socket, so that ``ihd pair`` and ``ihd unpair`` reach a running display.

The radio belongs to the running display, so pairing must happen inside it. The display
listens on a Unix socket in its runtime directory (mode 0600: only the same user); a
command is one JSON line, and the answer is a stream of JSON lines that ends when the
command is done. The touch UI will drive the same handlers in-process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ihd.app.pairing import PairingService, PairingStatus
from ihd.smwap.installcode import InstallCodeError
from ihd.smwap.keys import PairedMeter

log = logging.getLogger("ihd.control")

Message = dict[str, Any]
Reply = Callable[[Message], None]
Handler = Callable[[Message, Reply], None]


class ControlError(Exception):
    """No running display answered, or it answered nonsense."""


class ControlServer:
    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o077)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(4)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="ihd-control", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(
                target=self._handle, args=(conn,), name="ihd-control-client", daemon=True
            ).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rw", encoding="utf-8") as f:

            def reply(msg: Message) -> None:
                f.write(json.dumps(msg) + "\n")
                f.flush()

            try:
                line = f.readline()
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a command is a JSON object")
                handler = self.handlers.get(str(request.get("cmd")))
                if handler is None:
                    reply({"ok": False, "error": f"unknown command {request.get('cmd')!r}"})
                    return
                handler(request, reply)
            except (ValueError, OSError) as e:
                with contextlib.suppress(OSError):
                    reply({"ok": False, "error": f"bad request: {e}"})
            except Exception:  # a handler bug must not kill the server
                log.exception("control command failed")
                with contextlib.suppress(OSError):
                    reply({"ok": False, "error": "internal error (see the display's log)"})


def request(path: Path, message: Message, *, timeout: float = 60.0) -> Iterator[Message]:
    """Send one command to the running display and yield its answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as e:
        sock.close()
        raise ControlError("no running display") from e
    with sock, sock.makefile("rw", encoding="utf-8") as f:
        f.write(json.dumps(message) + "\n")
        f.flush()
        for line in f:
            try:
                yield json.loads(line)
            except ValueError as e:
                raise ControlError(f"garbled answer from the display: {e}") from None


def control_handlers(pairing: PairingService) -> dict[str, Handler]:
    """The commands a running display answers: pair, unpair, meters, status."""

    def pair(req: Message, reply: Reply) -> None:
        updates: queue.Queue[PairingStatus] = queue.Queue()
        meter = req.get("meter")
        pairing.listeners.append(updates.put)
        try:
            try:
                pairing.start(
                    str(req.get("install_code", "")),
                    meter_eui=int(str(meter), 16) if meter else None,
                    label=str(req.get("label") or ""),
                )
            except (InstallCodeError, RuntimeError) as e:
                reply({"ok": False, "error": str(e)})
                return
            while True:
                try:
                    status = updates.get(timeout=120)
                except queue.Empty:
                    reply({"ok": False, "error": "pairing did not finish"})
                    return
                reply({"ok": status.state != "failed", **status.as_dict()})
                if status.done:
                    return
        finally:
            pairing.listeners.remove(updates.put)

    def unpair(req: Message, reply: Reply) -> None:
        removed = pairing.unpair(int(str(req.get("meter")), 16))
        reply({"ok": True, "removed": removed})

    def meters(req: Message, reply: Reply) -> None:
        reply({"ok": True, "meters": [meter_summary(m) for m in pairing.paired()]})

    def status(req: Message, reply: Reply) -> None:
        reply({"ok": True, **pairing.status.as_dict()})

    return {"pair": pair, "unpair": unpair, "meters": meters, "status": status}


def meter_summary(m: PairedMeter) -> Message:
    """A paired meter without its keys."""
    return {"eui64": m.eui64_text, "utility": m.utility, "label": m.label, "pan_id": m.pan_id}
