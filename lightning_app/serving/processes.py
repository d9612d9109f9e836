"""The server's processes end with it: Ctrl-C and SIGTERM are the main process's to handle, and a worker whose
main process is gone ends too."""

import ctypes
import multiprocessing
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def follow_server(interrupt: bool = False) -> None:
    """In a worker process: end when the main process ends; ``interrupt``: keep the terminal's Ctrl-C.

    Ctrl-C reaches every process of the terminal's group at once; a worker that died of it would drop the
    requests it holds, so the main process alone handles it and stops the workers in order.
    """
    if not interrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def interrupt_on_sigterm() -> None:
    """In the main process: SIGTERM stops the server as Ctrl-C does, through LitServe's orderly shutdown."""

    main = os.getpid()

    def stop(signum, frame):
        if os.getpid() != main:
            # An HTTP process forked from this one inherits the handler and raises the signal again once it has
            # shut down gracefully: there it should simply end the process.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def end_children(timeout: float = 5.0) -> None:
    """End any process this one started that is still running (after a failed or interrupted start)."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(timeout)
        if child.is_alive():
            child.kill()
            child.join()
