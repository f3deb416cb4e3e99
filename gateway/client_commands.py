"""``execgw issue-token``: a new bearer token for a client, and the clients-file entry for it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.clients import Role, client_entry, load_clients, new_token, token_hash
from gateway.errors import ConfigurationError
from gateway.settings import Settings


def _issue_token(settings: Settings, args: argparse.Namespace) -> int:
    roles = [Role(r) for r in dict.fromkeys(args.role)]
    accounts = list(dict.fromkeys(args.account))
    target: Path | None = args.append
    if target is not None and target.exists():
        try:
            existing = load_clients(target)
        except ConfigurationError as exc:
            print(f"execgw: {exc.message}", file=sys.stderr)
            return 1
        if args.name in existing.clients:
            print(
                f"execgw: client {args.name!r} is already in {target}; to rotate its token, add "
                "a new one's hash to its token_sha256 list (the token was not issued)",
                file=sys.stderr,
            )
            return 1
    token = new_token()
    entry = client_entry(args.name, roles, accounts, token_hash(token))
    if target is not None:
        text = target.read_text() if target.exists() else ""
        separator = (
            "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
        )
        with target.open("a") as handle:
            handle.write(separator + entry)
        print(
            f"client {args.name!r} added to {target} (a running gateway picks it up on its next "
            "check or SIGHUP); the token below is shown once and stored nowhere",
            file=sys.stderr,
        )
    else:
        print(
            "add this to the clients file; the token below is shown once and stored nowhere:\n"
            + entry,
            file=sys.stderr,
        )
    print(token)
    return 0


def add_client_commands(commands: Any) -> None:
    """Add ``issue-token`` to the ``execgw`` command."""
    summary = "issue a bearer token for a client: prints the token once, stores only its hash"
    issue = commands.add_parser("issue-token", help=summary, description=summary)
    issue.add_argument("name", help="client name (as in the clients file and the logs)")
    issue.add_argument(
        "--role",
        action="append",
        required=True,
        choices=[r.value for r in Role],
        help="a role of the client (repeat for several)",
    )
    issue.add_argument(
        "--account",
        action="append",
        default=[],
        help="an account the client may use (repeat; '*' for every account)",
    )
    issue.add_argument(
        "--append",
        type=Path,
        metavar="CLIENTS_FILE",
        help="append the client's entry to this clients file (created if missing)",
    )
    issue.add_argument("--config", type=Path, default=None, help=argparse.SUPPRESS)
    issue.set_defaults(handler=_issue_token)
