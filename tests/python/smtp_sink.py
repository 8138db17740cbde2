"""A real SMTP server (aiosmtpd) on 127.0.0.1 for the email receiver's tests.

collector/tests/notify_receivers.rs starts it with the venv's Python, reads the port from the
first line of stdout ("PORT <n>"), mails to it, and reads what it stored. It runs until it is
killed or its stdin closes (the test holds stdin; when the test process goes, so does this).

Each accepted message N is stored in DIR as N.eml (the bytes received after DATA) and N.json,
written after the .eml and renamed into place, so a reader that sees N.json sees both whole:
    mail_from, rcpt_tos, tls (bool), auth_login (str or null),
    headers: [[name, decoded value], ...], subject, content_type,
    parts: [{content_type, charset, body}]  (every non-multipart part, decoded)
The message is parsed with Python's own email package, so the test checks what a real mail
reader sees.

Options:
    --dir DIR               where to store messages (required)
    --port N                port to listen on (default: a free one)
    --user U --password P   require AUTH (PLAIN/LOGIN) with these credentials
    --cert PEM --key PEM    offer STARTTLS with this certificate
    --require-starttls      refuse commands before STARTTLS
    --implicit-tls          TLS from the first byte (SMTPS) instead of STARTTLS

Recipients whose local part is "tempfail" get 451, "reject" get 550, to test the client's
handling of transient and permanent SMTP errors.
"""

import argparse
import email
import email.policy
import json
import logging
import os
import socket
import ssl
import sys
import threading
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, outdir):
        self.outdir = outdir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local == "tempfail":
            return "451 4.3.0 Try again later"
        if local == "reject":
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with self.lock:
            self.count += 1
            n = self.count
        message = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in message.walk():
            if part.is_multipart():
                continue
            parts.append(
                {
                    "content_type": part.get_content_type(),
                    "charset": part.get_content_charset(),
                    "body": part.get_content(),
                }
            )
        login = None
        if isinstance(session.auth_data, LoginPassword):
            login = session.auth_data.login.decode("utf-8", "replace")
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "tls": session.ssl is not None or is_tls(server.transport),
            "auth_login": login,
            "headers": [[k, str(v)] for k, v in message.items()],
            "subject": str(message.get("Subject", "")),
            "content_type": message.get_content_type(),
            "parts": parts,
        }
        eml = os.path.join(self.outdir, f"{n}.eml")
        with open(eml, "wb") as f:
            f.write(raw)
        tmp = os.path.join(self.outdir, f".{n}.json.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f)
        os.replace(tmp, os.path.join(self.outdir, f"{n}.json"))
        return "250 2.0.0 Message accepted for delivery"


def is_tls(transport):
    # STARTTLS sets session.ssl; implicit TLS shows only on the transport.
    return transport is not None and transport.get_extra_info("ssl_object") is not None


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False lets aiosmtpd answer 535; handled=True would leave the client
        # waiting for a reply that never comes.
        return AuthResult(success=False, handled=False)

    return authenticate


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    args = p.parse_args()
    # AUTH without TLS is what the plain-text tests want; keep stderr for real problems.
    warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    kwargs = {
        "server_hostname": "redline-test-sink",
        # Plain-text AUTH is fine on loopback; with TLS the client authenticates after it.
        "auth_require_tls": bool(context) and not args.implicit_tls,
    }
    if args.user is not None:
        kwargs["authenticator"] = authenticator_for(args.user, args.password or "")
        kwargs["auth_required"] = True
    if context is not None:
        if args.implicit_tls:
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = args.require_starttls

    os.makedirs(args.dir, exist_ok=True)
    handler = Sink(args.dir)
    # A port picked here can be taken before the server binds it; try a few.
    controller, last_error = None, None
    for _ in range(5):
        port = args.port or free_port()
        candidate = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        try:
            candidate.start()
        except Exception as e:  # noqa: BLE001 - reported below
            last_error = e
            if args.port:
                break
            continue
        controller = candidate
        break
    if controller is None:
        print(f"could not start: {last_error}", file=sys.stderr)
        sys.exit(1)

    print(f"PORT {port}", flush=True)
    try:
        # Until the test closes our stdin (or kills us).
        sys.stdin.read()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
