#!/usr/bin/env python3
"""Stand-ins for admin services Debian has no server for, used by lab.sh.

    listeners.py ADDRESS KIND:PORT [KIND:PORT ...]

KIND is `rdp` (accepts, reads the X.224 Connection Request and answers with an X.224
Connection Confirm carrying an RDP Negotiation Failure, then closes) or `winrm` (an HTTP server
that answers every request with 401 and `WWW-Authenticate: Negotiate`, as WinRM does to an
unauthenticated client). Enough for a connection to complete the TCP handshake and exchange a
first message; no protocol beyond that.
"""

import socket
import sys
import threading

# X.224 Connection Confirm with an RDP_NEG_FAILURE (SSL_REQUIRED_BY_SERVER): 19 bytes TPKT.
RDP_CC = bytes.fromhex("030000130ed000001234000300080001000000")
WINRM_401 = (
    b"HTTP/1.1 401 \r\n"
    b"Server: Microsoft-HTTPAPI/2.0\r\n"
    b"WWW-Authenticate: Negotiate\r\n"
    b"Content-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


def serve(conn, kind):
    conn.settimeout(3)
    try:
        if kind == "rdp":
            if conn.recv(4096):
                conn.sendall(RDP_CC)
        else:
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                buf += chunk
            if buf:
                conn.sendall(WINRM_401)
    except OSError:
        pass
    finally:
        conn.close()


def listen(addr, kind, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, kind), daemon=True).start()


def main():
    addr = sys.argv[1]
    threads = []
    for spec in sys.argv[2:]:
        kind, port = spec.split(":")
        assert kind in ("rdp", "winrm"), spec
        t = threading.Thread(target=listen, args=(addr, kind, int(port)), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
