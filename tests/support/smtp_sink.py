#!/usr/bin/python3
"""A real SMTP server for the e-mail tests (aiosmtpd, Debian's python3-aiosmtpd).

Listens on 127.0.0.1 on a port the kernel picks and prints that port on its first line
of output; writes each mail it accepts to DIR as NNNN.json (envelope, login, its headers and
parts as Python's mail parser reads them, the raw data),
renamed into place whole so a reader never sees half a mail.

  smtp_sink.py DIR [--auth USER:PASSWORD] [--starttls CERT KEY] [--tls CERT KEY]

A recipient refused@… is refused (550).
--auth requires that login (PLAIN/LOGIN, allowed without TLS: loopback tests only);
--starttls offers STARTTLS with that certificate; --tls speaks TLS from the first byte.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class MailDir:
    def __init__(self, path):
        self.path = path
        self.numbers = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # One address a real server would refuse, to test a permanent failure.
        if address.startswith("refused@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.numbers)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        raw = envelope.original_content
        # Python's own mail parser reads it back: a mail it cannot parse fails the test.
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {}
        for part in parsed.walk():
            if not part.is_multipart():
                parts[part.get_content_type()] = part.get_content()
        mail = {
            "headers": [[k, str(v)] for k, v in parsed.items()],
            "content_type": parsed.get_content_type(),
            "parts": parts,
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "data": raw.decode("utf-8", "replace"),
        }
        tmp = os.path.join(self.path, f"{n:04}.json.tmp")
        with open(tmp, "w") as f:
            json.dump(mail, f)
        os.rename(tmp, os.path.join(self.path, f"{n:04}.json"))
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


def context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--auth")
    p.add_argument("--starttls", nargs=2)
    p.add_argument("--tls", nargs=2)
    args = p.parse_args()
    handler = MailDir(args.dir)
    options = {"hostname": "sink.test"}
    if args.auth:
        user, password = args.auth.split(":", 1)
        options.update(
            authenticator=authenticator(user, password),
            auth_required=True,
            auth_require_tls=False,
        )
    if args.starttls:
        options.update(tls_context=context(*args.starttls), require_starttls=True)
    implicit = context(*args.tls) if args.tls else None
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, **options), host="127.0.0.1", port=0, ssl=implicit
        )
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    sys.exit(main())
