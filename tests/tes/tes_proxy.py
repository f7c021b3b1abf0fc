"""A loopback reverse proxy that adds a bearer token to every request.

The GA4GH conformance runner sends no token, and the service answers nothing under
`/ga4gh/tes/v1` without one, so the runner talks to this proxy, which forwards each request to
the service unchanged but for the `Authorization` header, and each answer back unchanged.

    python tes_proxy.py --upstream http://127.0.0.1:8080 --port-file /tmp/port
    (the token is read from SH_TES_TOKEN, so it never shows in a process list)
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that describe one connection, not the request or answer (RFC 9110, 7.6.1).
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade",
}


def handler_for(upstream: str, token: str) -> type[BaseHTTPRequestHandler]:
    target = urlsplit(upstream)
    if target.scheme != "http" or not target.hostname:
        raise ValueError(f"the upstream must be an http:// URL, not {upstream!r}")
    host: str = target.hostname

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                name: value
                for name, value in self.headers.items()
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("host", "authorization")
            }
            headers["Authorization"] = f"Bearer {token}"
            connection = http.client.HTTPConnection(host, target.port or 80, timeout=60)
            try:
                connection.request(self.command, target.path.rstrip("/") + self.path, body=body, headers=headers)
                answer = connection.getresponse()
                content = answer.read()
            except OSError as error:
                self.send_error(502, f"the service could not be reached: {error}")
                return
            finally:
                connection.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
            sys.stderr.write("tes-proxy: " + (format % args) + "\n")

    return Forward


def serve(upstream: str, token: str, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Starts the proxy in a thread of this process; `server_address` says where it listens."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the proxy listens on loopback only")
    server = ThreadingHTTPServer((host, port), handler_for(upstream, token))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the service's base URL, http://127.0.0.1:PORT")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    parser.add_argument("--port-file", help="write the port here once listening")
    arguments = parser.parse_args()
    token = os.environ.get("SH_TES_TOKEN")
    if not token:
        parser.error("SH_TES_TOKEN is not set")
    server = ThreadingHTTPServer(("127.0.0.1", arguments.port), handler_for(arguments.upstream, token))
    port = server.server_address[1]
    if arguments.port_file:
        with open(arguments.port_file + ".tmp", "w", encoding="utf-8") as file:
            file.write(str(port))
        os.replace(arguments.port_file + ".tmp", arguments.port_file)
    print(f"tes-proxy: 127.0.0.1:{port} -> {arguments.upstream}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
