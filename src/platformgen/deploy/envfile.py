"""The stack's `.env`: created once with fresh random secrets (mode 0600), never overwritten, only appended to.

Values are drawn from `secrets`/`os.urandom`: passwords are alphanumeric (safe inside URLs, YAML and shell), Fernet
keys are 32 random bytes in URL-safe base64, secret keys are URL-safe tokens. Settings of external systems are
written empty for the user to fill in. Nothing here prints or logs a value.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from platformgen.errors import PlatformgenError
from platformgen.targets.compose_env import EnvVar

PASSWORD_ALPHABET = string.ascii_letters + string.digits
PASSWORD_LENGTH = 32
FILE_MODE = 0o600


def fernet_key() -> str:
    """A valid Fernet key: 32 random bytes, URL-safe base64 (44 characters)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def random_password(length: int = PASSWORD_LENGTH) -> str:
    """A random alphanumeric password."""
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


def secret_key() -> str:
    """A random secret key for signing sessions (64 URL-safe characters)."""
    return secrets.token_urlsafe(48)


def fresh_value(var: EnvVar) -> str:
    """The value `platformgen up` writes for a variable."""
    if var.kind == "password":
        return random_password()
    if var.kind == "fernet":
        return fernet_key()
    if var.kind == "secret_key":
        return secret_key()
    return var.value  # a stack setting, or "" for an external system's


def read_env(path: Path) -> dict[str, str]:
    """The variables of a .env file (KEY=VALUE lines; comments, blanks and `export ` prefixes allowed)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if not text or text.startswith("#") or "=" not in text:
            continue
        key, _, value = text.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _block(variables: list[EnvVar]) -> str:
    lines: list[str] = []
    for var in variables:
        note = "set it yourself" if var.kind == "external" else "generated"
        lines += [f"# {var.description} ({note})", f"{var.name}={fresh_value(var)}", ""]
    return "\n".join(lines)


@dataclass
class EnvFileResult:
    """What `ensure_env_file` did."""

    path: Path
    created: bool = False
    added: list[str] = field(default_factory=list)


def ensure_env_file(path: Path, variables: list[EnvVar], platform: str) -> EnvFileResult:
    """Create `path` with fresh values when it is missing; otherwise append only the variables it lacks.

    An existing value is never changed. A new file is created with mode 0600 (owner read/write only).
    """
    result = EnvFileResult(path)
    if not path.exists():
        header = (
            f"# Secrets and settings of the {platform} stack, created by `platformgen up`.\n"
            "# Private: never commit or share it. platformgen never overwrites a value here; it only appends\n"
            "# variables the spec starts to need. Descriptions: .env.example next to this file.\n\n"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:  # created meanwhile by someone else: treat it as existing
            return ensure_env_file(path, variables, platform)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask
            handle.write(header + _block(variables))
        result.created = True
        result.added = [v.name for v in variables]
        return result
    try:
        existing = read_env(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise PlatformgenError(f"cannot read {path}: {exc}") from exc
    missing = [v for v in variables if v.name not in existing]
    if missing:
        text = path.read_text(encoding="utf-8")
        separator = "" if text.endswith("\n") or not text else "\n"
        with path.open("a", encoding="utf-8", newline="\n") as handle:
            handle.write(separator + "\n# added by `platformgen up` for new parts of the spec\n" + _block(missing))
        result.added = [v.name for v in missing]
    return result
