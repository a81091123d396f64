"""Ctrl-C: every command stops with "interrupted" and exit status 130, leaving no temporaries.

Some libraries swallow the KeyboardInterrupt (nutpie returns the draws so far; a ctypes callback of
the numba compiler prints "Exception ignored" and compiles on) or wrap it (a SystemError out of
compiled code).  The SIGINT handler therefore also records that it fired (:func:`raise_if_interrupted`
turns a swallowed interrupt back into one before anything is written), and starts a watchdog: if the
command has not stopped within ``GRACE_S`` seconds, it runs the registered clean-ups itself and exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention


class Interrupted(KeyboardInterrupt):
    """The user pressed Ctrl-C (or the process got SIGINT)."""


GRACE_S = 3.0


class _State:
    hit = False
    message = "interrupted"
    watchdog: threading.Timer | None = None
    cleanups: list = []


_state = _State()


def on_interrupt(fn):
    """Register ``fn()`` (remove a lock, temporaries) to run if the watchdog has to end the process."""
    _state.cleanups.append(fn)
    return fn


def forget(fn) -> None:
    if fn in _state.cleanups:
        _state.cleanups.remove(fn)


def _force_exit():
    for fn in reversed(list(_state.cleanups)):
        try:
            fn()
        except Exception:  # noqa: BLE001 - best effort while exiting
            pass
    sys.stderr.write(_state.message + "\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _on_sigint(signum, frame):
    if not _state.hit:
        _state.hit = True
        _state.watchdog = threading.Timer(GRACE_S, _force_exit)
        _state.watchdog.daemon = True
        _state.watchdog.start()
    raise Interrupted()


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` when a SIGINT arrived, even if a library swallowed it."""
    if _state.hit:
        raise Interrupted()


def is_interrupt(exc: BaseException | None) -> bool:
    """Did ``exc`` (or an exception it was raised from) come from Ctrl-C?"""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return _state.hit


@contextlib.contextmanager
def interruptible(message: str = "interrupted"):
    """Install the recording SIGINT handler for the duration (main thread only); yields the state.
    ``message`` is what the watchdog prints if it has to end the process."""
    _state.hit, _state.message, _state.cleanups = False, message, []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint) if main else None
    hook = sys.unraisablehook

    def quiet_hook(unraisable):  # an interrupt swallowed by a C callback: no "Exception ignored" traceback
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) or _state.hit):
            hook(unraisable)

    sys.unraisablehook = quiet_hook
    try:
        yield _state
    finally:
        sys.unraisablehook = hook
        if _state.watchdog is not None:  # the command stopped in time: no forced exit
            _state.watchdog.cancel()
            _state.watchdog = None
        if main:
            signal.signal(signal.SIGINT, previous)
