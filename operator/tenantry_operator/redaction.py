"""Removing secrets from text before it is printed, or put in a status or an Event.

A status and an Event are readable by everyone who may ``get`` the resource, so a
Job's error line passes through here twice: in the Job (its own settings' secrets) and
in the operator (every value of the tenant's credentials Secrets and the operator's S3
keys), before it reaches the Tenant or the Restore.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret (as is and URL-quoted) replaced by ``***``, and the
    password of any ``scheme://user:password@`` URL too, known or not."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, MASK)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
