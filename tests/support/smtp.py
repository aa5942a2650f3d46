"""A minimal SMTP server for tests (RFC 5321's HELO/EHLO, MAIL, RCPT, DATA, QUIT): it keeps each
message it accepts, and refuses a recipient with 451 (try again later) while `refuse` names it."""
from __future__ import annotations

import socketserver
import threading
from email import message_from_bytes, policy


class SmtpServer:
    def __init__(self):
        self.messages: list = []
        self.refuse: set[str] = set()
        box = self

        class Handler(socketserver.StreamRequestHandler):
            def say(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self):
                self.say("220 test ESMTP")
                rcpt, data = [], None
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode(errors="replace").strip()
                    verb = cmd[:4].upper()
                    if verb in ("HELO", "EHLO"):
                        self.say("250 test")
                    elif verb == "MAIL":
                        rcpt = []
                        self.say("250 OK")
                    elif verb == "RCPT":
                        addr = cmd.split(":", 1)[1].strip().strip("<>")
                        if addr in box.refuse:
                            self.say("451 4.3.0 try again later")
                        else:
                            rcpt.append(addr)
                            self.say("250 OK")
                    elif verb == "DATA":
                        self.say("354 end with .")
                        lines = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        data = b"".join(lines)
                        box.messages.append((rcpt, message_from_bytes(data, policy=policy.default)))
                        self.say("250 queued")
                    elif verb == "QUIT":
                        self.say("221 bye")
                        return
                    else:
                        self.say("250 OK")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
