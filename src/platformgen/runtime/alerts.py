"""Alert routing and delivery: routes -> channels, Slack webhook and SMTP e-mail, and the data_platform.alerts log.

`raise_alert` is called from Airflow callbacks and from the SLA monitor, so it never raises: a missing
webhook variable, an unreachable Slack, SMTP server or warehouse is logged as a WARNING and the alert is
recorded as not delivered (when the warehouse is reachable). Secrets (the webhook URL, the SMTP password and
every password or key the platform config references) are scrubbed from every log line and stored message.

Channel names in routes and SLA `notify` lists:

- ``email``: the addresses of ``alerting.email.to``;
- ``slack``: the incoming webhook of ``alerting.slack``;
- an e-mail address (contains ``@``): that address;
- anything else is a team name. Team addresses are not part of the platform config the DAGs embed, so a
  team resolves only when the config carries an optional ``teams`` mapping (``{"analytics": {"email": ...}}``);
  otherwise it is logged and skipped.

SMTP settings come from the environment: SMTP_HOST (required for e-mail), SMTP_PORT (587; 465 means implicit
TLS), SMTP_USER and SMTP_PASSWORD (login when SMTP_USER is set), SMTP_STARTTLS (true unless false/0/no/off),
SMTP_FROM (sender when the spec gives no ``alerting.email.from``), SMTP_TIMEOUT (seconds, 10).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from platformgen.runtime.settings import ConfigError, resolve, scrub

log = logging.getLogger("platformgen.runtime.alerts")

SEVERITIES = ("warn", "error")
SLACK_TIMEOUT_SECONDS = 10.0
#: Keys in the platform config whose env:VAR values are secrets, scrubbed from messages.
_SECRET_KEYS = ("password", "secret_key", "webhook", "token")


@dataclass
class Recipients:
    """Where one alert goes: e-mail addresses (ordered, unique), whether Slack, and names that did not resolve."""

    emails: list[str] = field(default_factory=list)
    slack: bool = False
    unresolved: list[str] = field(default_factory=list)

    def add_email(self, address: str) -> None:
        if address not in self.emails:
            self.emails.append(address)

    def channels(self, platform: dict[str, Any]) -> list[str]:
        """Channel labels as stored in data_platform.alerts: `slack:<channel>` and `email:<address>`."""
        labels = [f"email:{address}" for address in self.emails]
        if self.slack:
            slack = (platform.get("alerting") or {}).get("slack") or {}
            labels.insert(0, f"slack:{slack.get('channel') or 'webhook'}")
        return labels


def route_names(routes: Iterable[dict[str, Any]], severity: str, owner: str | None) -> list[str]:
    """The notify entries of every route matching the severity (or `any`) and, when the route has one, the owner."""
    names: list[str] = []
    for route in routes:
        if route.get("severity", "any") not in ("any", severity):
            continue
        if route.get("owner") and route.get("owner") != owner:
            continue
        for name in route.get("notify") or []:
            if name not in names:
                names.append(str(name))
    return names


def resolve_recipients(platform: dict[str, Any], names: Iterable[str]) -> Recipients:
    """Turn channel names (email, slack, addresses, teams) into concrete recipients."""
    alerting = platform.get("alerting") or {}
    teams = platform.get("teams") or {}
    result = Recipients()
    for name in names:
        if name == "email":
            email = alerting.get("email") or {}
            if not email.get("to"):
                result.unresolved.append(name)
                continue
            for address in email["to"]:
                result.add_email(str(address))
        elif name == "slack":
            if alerting.get("slack"):
                result.slack = True
            else:
                result.unresolved.append(name)
        elif "@" in name:
            result.add_email(name)
        else:
            team = teams.get(name) or {}
            if team.get("email"):
                result.add_email(str(team["email"]))
            elif team.get("members"):  # a team without a shared address: its members
                for member in team["members"]:
                    result.add_email(str(member))
            elif name not in result.unresolved:
                result.unresolved.append(name)
    return result


def known_secrets(platform: dict[str, Any]) -> list[str]:
    """Values of every env:VAR secret the platform config references, plus SMTP_PASSWORD: scrubbed from text."""
    found: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and any(part in key for part in _SECRET_KEYS):
            try:
                value = resolve(node, key)
            except ConfigError:
                return
            if isinstance(value, str) and value:
                found.append(value)

    walk(platform)
    for name in ("SMTP_PASSWORD", "SLACK_WEBHOOK_URL"):
        if os.environ.get(name):
            found.append(os.environ[name])
    return found


def _subject(platform: dict[str, Any], kind: str, severity: str, where: str) -> str:
    name = platform.get("name") or "platform"
    return f"[{name}] {severity.upper()} {kind}: {where}"


def _where(dataset: str | None, dag_id: str | None, task_id: str | None) -> str:
    if dag_id and task_id:
        place = f"{dag_id}.{task_id}"
    else:
        place = dag_id or task_id or ""
    if dataset:
        return f"{dataset} ({place})" if place else dataset
    return place or "platform"


def _body(
    message: str,
    *,
    kind: str,
    severity: str,
    dataset: str | None,
    dag_id: str | None,
    task_id: str | None,
    run_id: str | None,
) -> str:
    lines = [message, "", f"kind: {kind}", f"severity: {severity}"]
    for label, value in (("dataset", dataset), ("dag", dag_id), ("task", task_id), ("run", run_id)):
        if value:
            lines.append(f"{label}: {value}")
    return "\n".join(lines) + "\n"


def send_slack(webhook_url: str, text: str, *, timeout: float = SLACK_TIMEOUT_SECONDS) -> None:
    """POST {"text": ...} to a Slack incoming webhook; raises OSError (incl. HTTP errors) on failure."""
    import json
    import urllib.request

    request = urllib.request.Request(
        webhook_url,
        data=json.dumps({"text": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        status = getattr(response, "status", 200)
        if status >= 300:
            raise OSError(f"Slack answered HTTP {status}")


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def send_email(sender: str, recipients: Sequence[str], subject: str, body: str) -> None:
    """Send a plain-text e-mail through the SMTP server of the environment; raises on failure."""
    import smtplib
    import ssl
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    host = os.environ.get("SMTP_HOST")
    if not host:
        raise ConfigError(
            "SMTP_HOST is not set: set SMTP_HOST (and SMTP_PORT, SMTP_USER, SMTP_PASSWORD) to send e-mail"
        )
    port = int(os.environ.get("SMTP_PORT") or 587)
    timeout = float(os.environ.get("SMTP_TIMEOUT") or 10)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] if "@" in sender else None)
    message.set_content(body)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if port == 465:
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    with client:
        client.ehlo()
        if port != 465 and _env_flag("SMTP_STARTTLS", True):
            client.starttls(context=context)
            client.ehlo()
        user = os.environ.get("SMTP_USER")
        if user:
            client.login(user, os.environ.get("SMTP_PASSWORD", ""))
        client.send_message(message, from_addr=sender, to_addrs=list(recipients))


def record_alert(
    platform: dict[str, Any],
    *,
    kind: str,
    severity: str,
    message: str,
    dataset: str | None,
    dag_id: str | None,
    task_id: str | None,
    run_id: str | None,
    channels: Sequence[str],
    delivered: bool,
) -> None:
    """Insert one row into <platform schema>.alerts (creating the data_platform tables if needed)."""
    from platformgen.runtime.warehouse import connect_warehouse, ensure_platform_schema, quote_ident

    schema = quote_ident(platform["schemas"]["platform"])
    with connect_warehouse(platform, autocommit=False) as conn:
        ensure_platform_schema(conn, platform)
        with conn.cursor() as cur:
            cur.execute(
                f"insert into {schema}.alerts (kind, severity, dataset, dag_id, task_id, run_id, message, channels, "
                "delivered) values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (kind, severity, dataset, dag_id, task_id, run_id, message, list(channels), delivered),
            )


def raise_alert(
    platform: dict[str, Any],
    *,
    kind: str,
    severity: str,
    message: str,
    dataset: str | None = None,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    owner: str | None = None,
    notify: Sequence[str] = (),
) -> list[str]:
    """Route, send and record an alert; returns the channels it was delivered to. Never raises.

    `notify` adds channel names (an SLA's own list) to those of the matching routes. The stored row lists
    every channel the alert was routed to; `delivered` is true when all of them (and at least one) succeeded.
    """
    try:
        return _raise_alert(
            platform,
            kind=kind,
            severity=severity,
            message=message,
            dataset=dataset,
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id,
            owner=owner,
            notify=notify,
        )
    except Exception as exc:  # a bug here must not hide the failure that raised the alert
        log.warning("alert %s could not be raised: %s", kind, scrub(f"{type(exc).__name__}: {exc}"))
        return []


def _raise_alert(
    platform: dict[str, Any],
    *,
    kind: str,
    severity: str,
    message: str,
    dataset: str | None,
    dag_id: str | None,
    task_id: str | None,
    run_id: str | None,
    owner: str | None,
    notify: Sequence[str],
) -> list[str]:
    secrets = known_secrets(platform)
    alerting = platform.get("alerting") or {}
    message = scrub(message, *secrets)
    names = route_names(alerting.get("routes") or [], severity, owner)
    for name in notify:
        if name not in names:
            names.append(name)
    recipients = resolve_recipients(platform, names)
    if recipients.unresolved:
        log.warning(
            "alert %s: no address known for %s (give the team an email or members in governance.teams; "
            "channels need alerting.email/alerting.slack): not notified",
            kind,
            ", ".join(recipients.unresolved),
        )
    where = _where(dataset, dag_id, task_id)
    subject = _subject(platform, kind, severity, where)
    delivered: list[str] = []
    failed: list[str] = []

    if recipients.slack:
        label = recipients.channels(platform)[0]
        slack = alerting.get("slack") or {}
        try:
            url = str(resolve(slack.get("webhook"), "Slack webhook"))
            if not url:
                raise ConfigError("Slack webhook: the variable is empty")
            secrets.append(url)
            icon = ":red_circle:" if severity == "error" else ":warning:"
            send_slack(url, f"{icon} *{subject}*\n{message}")
            delivered.append(label)
        except Exception as exc:
            failed.append(label)
            log.warning("alert %s: Slack delivery failed: %s", kind, scrub(_describe(exc), *secrets))

    if recipients.emails:
        email = alerting.get("email") or {}
        sender = email.get("from") or os.environ.get("SMTP_FROM") or os.environ.get("SMTP_USER") or ""
        labels = [f"email:{address}" for address in recipients.emails]
        try:
            if not sender:
                raise ConfigError("no sender address: set alerting.email.from in the spec or SMTP_FROM")
            body = _body(
                message, kind=kind, severity=severity, dataset=dataset, dag_id=dag_id, task_id=task_id, run_id=run_id
            )
            send_email(sender, recipients.emails, subject, body)
            delivered.extend(labels)
        except Exception as exc:
            failed.extend(labels)
            log.warning(
                "alert %s: e-mail to %s failed: %s",
                kind,
                ", ".join(recipients.emails),
                scrub(_describe(exc), *secrets),
            )

    routed = recipients.channels(platform)
    if not routed:
        log.warning("alert %s (%s) on %s matched no channel: recorded only", kind, severity, where)
    try:
        record_alert(
            platform,
            kind=kind,
            severity=severity,
            message=message,
            dataset=dataset,
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id,
            channels=routed,
            delivered=bool(routed) and not failed,
        )
    except Exception as exc:
        log.warning("alert %s could not be recorded in the warehouse: %s", kind, scrub(_describe(exc), *secrets))
    log.info("alert %s (%s) on %s delivered to %s", kind, severity, where, ", ".join(delivered) or "no channel")
    return delivered


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
