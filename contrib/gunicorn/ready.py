# A gunicorn config for vassals with `ready = notify`: READY=1 once every worker has loaded the
# app, rather than when the arbiter has its sockets. gunicorn 20 sends READY=1 before it forks a
# single worker, so a rolling reload would retire the old generation while nothing accepts yet,
# and clients wait in the socket's queue for the new workers to import the app.
#
#   exec = gunicorn -c /path/to/contrib/gunicorn/ready.py --workers 4 myapp:app
#
# With a config file of your own, import these hooks from it (gunicorn takes one config file):
#   from ready import on_starting, post_worker_init  # with this file's folder on sys.path
#
# What changes: `ready-timeout` now also covers the workers' import of the app, and NOTIFY_SOCKET
# is taken out of gunicorn's environment, so nothing else in it can send WATCHDOG=1 or STATUS=.
# A SIGHUP before the workers are ready reloads this file without its state: READY=1 then never
# comes, and the emperor abandons the new generation at `ready-timeout` (the old one serves on).
import os
import select
import socket
import threading

_notify_address = None
_worker_ready_w = None


def _notify(message):
    address = _notify_address
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace, as the emperor gives it
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(address)
        s.sendall(message.encode())


def on_starting(server):
    """In the arbiter, before it binds or forks: take NOTIFY_SOCKET away from gunicorn's own
    sd_notify (the early READY=1), and count the workers that report in through a pipe."""
    global _notify_address, _worker_ready_w
    _notify_address = os.environ.pop("NOTIFY_SOCKET", None)
    if _notify_address is None:
        return  # not run with ready = notify: nothing to tell
    read_end, _worker_ready_w = os.pipe()
    os.set_blocking(_worker_ready_w, False)  # a worker never blocks on it

    def wait_for_workers():
        global _worker_ready_w
        reported = set()
        buffered = b""
        while True:
            # Workers report by pid: one that reports and is replaced is not counted twice, and
            # TTIN/TTOU before readiness change how many must report.
            if select.select([read_end], [], [], 0.2)[0]:
                chunk = os.read(read_end, 4096)
                if not chunk:
                    return
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                reported.update(int(pid) for pid in lines if pid)
            live = reported.intersection(list(server.WORKERS))
            if server.num_workers > 0 and len(live) >= server.num_workers:
                break
        _notify("READY=1\nSTATUS=%d workers ready" % len(live))
        # Workers forked from now on see None and write nothing; the fd closes only after that.
        w, _worker_ready_w = _worker_ready_w, None
        os.close(w)
        os.close(read_end)

    threading.Thread(target=wait_for_workers, name="emperor-ready", daemon=True).start()


def post_worker_init(worker):
    """In each worker, once it has loaded the app and is about to accept."""
    if _worker_ready_w is None:
        return
    try:
        os.write(_worker_ready_w, b"%d\n" % os.getpid())
    except OSError:
        pass  # EAGAIN (a full pipe) or EPIPE: the arbiter stopped counting, nothing to do
