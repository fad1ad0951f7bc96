"""``mlx.launch`` as the daemon's child: the same launcher, tied to the daemon's life.

    python -m ollmlx_mlx.launch [mlx.launch arguments] -- python -m ollmlx_mlx --distributed ring ...

``mlx.launch`` starts one runner per host (ssh for remote hosts), passes every rank's output
through, and ends all ranks when one fails. Two things it does not do, added here:

- **Die with the daemon.** The daemon holds this process's stdin open and never writes; EOF
  means it is gone (even SIGKILLed). On EOF, or on Linux's parent-death signal, the whole process
  group (this launcher and its local ranks; remote ranks lose their ssh session) is terminated.
- **Keep its ranks' stdin quiet.** mlx.launch copies its stdin to every rank; it gets a pipe that
  stays open and empty instead, so a rank's own stdin watch fires only when the launcher is gone.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from .__main__ import set_parent_death_signal


def _watch_daemon(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    os.killpg(os.getpgrp(), signal.SIGTERM)


def main() -> None:
    set_parent_death_signal()
    daemon_stdin = os.dup(0)
    quiet, _keep_open = os.pipe()
    os.dup2(quiet, 0)
    threading.Thread(target=_watch_daemon, args=(daemon_stdin,), daemon=True).start()
    from mlx._distributed_utils.launch import main as launch

    sys.argv[0] = "mlx.launch"
    launch()


if __name__ == "__main__":
    main()
