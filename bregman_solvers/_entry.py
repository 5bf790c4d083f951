"""The console script ``bregman-solvers`` (and ``python -m bregman_solvers``): the command line of
:mod:`bregman_solvers.cli`, with Ctrl-C answered in one line from its first tenth of a second on.

``import bregman_solvers`` loads nothing heavy (its names are imported on first use), so this
module runs within milliseconds of the interpreter's start. The command line's own imports (NumPy,
SciPy, scikit-learn: about 1.5 s) run under a SIGINT handler that only takes note: a
``KeyboardInterrupt`` raised inside another library's import code can be swallowed by it (the
command then ran on) or leave the interpreter to exit by the signal. When the imports are done, a
noted Ctrl-C ends the command with one line and exit status 130; from there on the command's own
handler (:mod:`bregman_solvers.cli`) takes over.
"""
import signal
import sys
import threading

MESSAGE = "bregman-solvers: interrupted while starting; nothing was run"


def main(argv=None):
    noted = []
    watching = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum)) if watching else None
    try:
        from .cli import main as command_line          # the heavy imports
    finally:
        if watching:
            signal.signal(signal.SIGINT, previous)
    if noted:
        print(MESSAGE, file=sys.stderr)
        return 130
    try:
        return command_line(argv)
    except KeyboardInterrupt:                          # before the command's own handler is installed
        print(MESSAGE, file=sys.stderr)
        return 130


if __name__ == "__main__":          # pragma: no cover - the console script calls main()
    sys.exit(main())
