"""Run ``ihd demo`` exactly as the command line does, and report when a meter value is on screen.

Not a benchmark module itself: ``bench_startup.py`` starts it as a fresh process, notes
``time.monotonic()`` just before it does, and reads the lines this prints. CLOCK_MONOTONIC
is system-wide on Linux, so the parent can subtract its own start time from ours and the
interval includes exec, interpreter start-up and every import.

The driver changes nothing in the app: it calls ``ihd.cli.main(["demo", ...])`` with
timing wrappers around ``seed_history`` and ``build_pipeline`` and one around ``Gui.run``
that watches the window's frames. A frame "shows a meter value" when the ``demandText``
item's text, as synchronised into the scene graph for that frame, is no longer the
placeholder "–" (Live's initial value); the moment is taken when that frame has been
swapped (presented). Then the app is asked to quit.

Output (stdout, one line each, monotonic seconds): ``BENCH <event> <t>`` for
``main``, ``imports``, ``seed_start``, ``seed_end``, ``pipeline_built``, ``gui_built``,
``first_frame``, ``first_value``; and ``BENCH value <text>``.
"""

import time

T_MAIN = time.monotonic()  # before any import of ours

import sys  # noqa: E402


def emit(event: str, value: object) -> None:
    sys.stdout.write(f"BENCH {event} {value}\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    emit("main", T_MAIN)
    import ihd.app.runner as runner
    from ihd import cli

    emit("imports", time.monotonic())  # cli + runner (no Qt yet: as `ihd demo` imports it)

    real_seed = runner.seed_history
    real_build = runner.build_pipeline
    real_run_gui = runner._run_gui

    def seed_history(*args, **kwargs):  # type: ignore[no-untyped-def]
        emit("seed_start", time.monotonic())
        try:
            return real_seed(*args, **kwargs)
        finally:
            emit("seed_end", time.monotonic())

    def build_pipeline(*args, **kwargs):  # type: ignore[no-untyped-def]
        p = real_build(*args, **kwargs)
        emit("pipeline_built", time.monotonic())
        return p

    def run_gui(*args, **kwargs):  # type: ignore[no-untyped-def]
        import ihd.ui.app as ui_app

        _hook_gui(ui_app.Gui)
        return real_run_gui(*args, **kwargs)

    runner.seed_history = seed_history
    runner.build_pipeline = build_pipeline
    runner._run_gui = run_gui
    return cli.main(["demo", *argv])


def _hook_gui(gui_cls: type) -> None:
    from PySide6.QtCore import QObject, Qt, QTimer

    real_init = gui_cls.__init__
    real_run = gui_cls.run

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        real_init(self, *args, **kwargs)
        emit("gui_built", time.monotonic())

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        window = self.window
        item = window.findChild(QObject, "demandText") or _find_item(
            window.contentItem(), "demandText"
        )
        if item is None:
            emit("error", "no item with objectName demandText")
            self.app.quit()
            return real_run(self, *args, **kwargs)
        state = {"synced": "", "frames": 0, "done": False}

        def after_sync() -> None:  # GUI thread blocked: the item's state is this frame's
            state["synced"] = str(item.property("text"))

        def swapped() -> None:
            if state["done"]:
                return
            now = time.monotonic()
            state["frames"] += 1
            if state["frames"] == 1:
                emit("first_frame", now)
            text = state["synced"]
            if text and text != "–":
                state["done"] = True
                emit("first_value", now)
                emit("value", text)
                QTimer.singleShot(0, self.app, self.app.quit)  # queued to the GUI thread

        window.afterSynchronizing.connect(after_sync, Qt.ConnectionType.DirectConnection)
        window.frameSwapped.connect(swapped, Qt.ConnectionType.DirectConnection)
        return real_run(self, *args, **kwargs)

    gui_cls.__init__ = init
    gui_cls.run = run


def _find_item(root, name):  # type: ignore[no-untyped-def]
    """Depth-first search of the visual tree (items not parented as QObjects)."""
    if root is None:
        return None
    if root.objectName() == name:
        return root
    for child in root.childItems():
        found = _find_item(child, name)
        if found is not None:
            return found
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
