# A gunicorn config for vassals with `ready = notify`: READY=1 once every worker has loaded the
# app, rather than when the arbiter has its sockets. gunicorn 20 sends READY=1 before it forks a
# single worker, so a rolling reload would retire the old generation while nothing accepts yet,
# and clients wait in the socket's queue for the new workers to import the app.
#
#   exec = gunicorn -c /path/to/contrib/gunicorn/ready.py --workers 4 myapp:app
#
# With a config file of your own, import these hooks from it (gunicorn has one config file):
#   from ready import on_starting, post_worker_init  # with this file's folder on sys.path
# Workers that gunicorn starts later (after a crash, or --max-requests) send nothing more.
import os
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
    sd_notify (the early READY=1), and count workers that report in through a pipe."""
    global _notify_address, _worker_ready_w
    _notify_address = os.environ.pop("NOTIFY_SOCKET", None)
    if _notify_address is None:
        return  # not run with ready = notify: nothing to tell
    expected = server.num_workers
    read_end, _worker_ready_w = os.pipe()
    # A worker never blocks on it: late workers find it full and give up (see post_worker_init).
    os.set_blocking(_worker_ready_w, False)

    def wait_for_workers():
        seen = 0
        while seen < expected:
            chunk = os.read(read_end, 64)
            if not chunk:
                return
            seen += len(chunk)
        _notify("READY=1\nSTATUS=%d workers ready" % expected)
        os.close(read_end)

    threading.Thread(target=wait_for_workers, name="emperor-ready", daemon=True).start()


def post_worker_init(worker):
    """In each worker, once it has loaded the app and is about to accept."""
    if _worker_ready_w is None:
        return
    try:
        os.write(_worker_ready_w, b".")
    except OSError:
        pass  # EPIPE once the arbiter stopped counting, EAGAIN if nobody reads: nothing to do
