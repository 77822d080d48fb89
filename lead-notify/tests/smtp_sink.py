"""A real SMTP server for lead-notify's e-mail tests (aiosmtpd).

    smtp_sink.py DIRECTORY USER PASSWORD

Listens on 127.0.0.1 on a free port and prints that port as the first line
of standard output. Requires AUTH (PLAIN or LOGIN, offered without TLS) with
USER and PASSWORD, and writes each message it accepts to DIRECTORY as
``<n>.eml``: ``X-Sink-Mail-From`` and ``X-Sink-Rcpt-To`` lines (the SMTP
envelope) followed by the message exactly as received (RFC 5322). A file
appears whole (written aside, then renamed), so a reader never sees half a
message. Two recipients stand for a mail server's refusals: ``bounce@...``
is answered ``550`` (mailbox unavailable, permanent), ``defer@...`` ``451``
(try again later).

Stops when killed or when its standard input closes, so a test process that
dies without cleaning up leaves no server behind. Installed by .ci/smtp-setup.
"""

import itertools
import logging
import os
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


# A loopback test server: AUTH without TLS is what the tests want, so
# aiosmtpd's warnings about it (and its own deprecation notice) are noise.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
logging.getLogger("mail.log").setLevel(logging.ERROR)


class Sink:
    """Writes every accepted message to a directory."""

    def __init__(self, directory):
        self.directory = directory
        self.numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "bounce":
            return "550 5.1.1 Mailbox unavailable"
        if local == "defer":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        number = next(self.numbers)
        head = "X-Sink-Mail-From: {}\r\nX-Sink-Rcpt-To: {}\r\n".format(
            envelope.mail_from, ", ".join(envelope.rcpt_tos)
        ).encode("utf-8")
        final = os.path.join(self.directory, "{}.eml".format(number))
        partial = final + ".part"
        with open(partial, "wb") as out:
            out.write(head + envelope.original_content)
        os.rename(partial, final)
        return "250 2.0.0 Message accepted"


class FreePortController(Controller):
    """aiosmtpd's Controller on the port the system picks (port 0).

    Controller checks the server by connecting to ``self.port``; with port 0
    that is the port actually bound, read from the listening socket.
    """

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode("utf-8")
            and auth_data.password == password.encode("utf-8")
        )
        # handled=False lets aiosmtpd answer the refusal itself (535 5.7.8).
        return AuthResult(success=ok, handled=False)

    return authenticate


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: smtp_sink.py DIRECTORY USER PASSWORD")
    directory, user, password = sys.argv[1:]
    controller = FreePortController(
        Sink(directory),
        hostname="127.0.0.1",
        port=0,
        authenticator=authenticator_for(user, password),
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    print(controller.port, flush=True)
    # Runs until the parent closes our standard input (or kills us).
    stdin_closed = threading.Event()

    def wait_for_eof():
        sys.stdin.buffer.read()
        stdin_closed.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    stdin_closed.wait()
    controller.stop()


if __name__ == "__main__":
    main()
