"""A stand-in for a local-stack service: a loopback HTTP server answering 200 to any GET.

Run as ``python -c STAND_IN PORT [WORKER_PID_FILE]``: with a second argument it also starts a
child that sleeps (a worker in the service's process group, as gunicorn's) and writes its PID
there.
"""

STAND_IN = """
import http.server, subprocess, sys
if len(sys.argv) > 2:  # a worker in the service's process group, as gunicorn's
    worker = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    open(sys.argv[2], "w").write(str(worker.pid))
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
"""
