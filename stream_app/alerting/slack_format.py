"""Slack-compatible message bodies for alert events (``{"text": ..., "blocks": [...]}``).

Works with Slack incoming webhooks and with the many tools that accept their format (Mattermost,
Rocket.Chat, Discord's ``/slack`` endpoint). ``text`` is the notification fallback; ``blocks``
hold a header, a section with the summary and fields, and the recommended next steps.
"""

from __future__ import annotations

from typing import Any

from schemas.alerts import AlertEvent, AlertStatus
from stream_app.core.rules.grouping import Notification

_SCOPE_LABELS = ("pool", "region", "proxy_id")
_MAX_SECTION_CHARS = 2900  # Slack refuses section text over 3000 characters.
_MAX_LISTED_ALERTS = 20  # one line each in the notification's list


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _scope(event: AlertEvent) -> str:
    parts = [f"{k}={event.labels[k]}" for k in _SCOPE_LABELS if k in event.labels]
    return ", ".join(parts) if parts else "fleet"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def slack_body(event: AlertEvent) -> dict[str, Any]:
    """The Slack webhook body for one alert event."""
    firing = event.status is AlertStatus.FIRING
    marker = ":rotating_light:" if firing else ":white_check_mark:"
    state = "FIRING" if firing else "RESOLVED"
    alertname = event.labels.get("alertname", "alert")
    severity = event.labels.get("severity", "")
    scope = _scope(event)
    summary = event.annotations.get("summary", "")
    headline = f"[{state}] {alertname} ({scope})" + (f" severity={severity}" if severity else "")
    text = f"{marker} {headline}" + (f": {summary}" if summary else "")

    fields = [
        {"type": "mrkdwn", "text": f"*Scope*\n{escape_mrkdwn(scope)}"},
        {"type": "mrkdwn", "text": f"*Severity*\n{escape_mrkdwn(severity or 'n/a')}"},
        {"type": "mrkdwn", "text": f"*Value*\n{_number(event.value)}"},
        {"type": "mrkdwn", "text": f"*Threshold*\n{_number(event.threshold)}"},
    ]
    body_lines = [f"{marker} *{escape_mrkdwn(headline)}*"]
    if summary:
        body_lines.append(escape_mrkdwn(summary))
    description = event.annotations.get("description")
    if description:
        body_lines.append(escape_mrkdwn(description))
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "\n".join(body_lines)[:_MAX_SECTION_CHARS]},
            "fields": fields,
        }
    ]
    next_steps = event.annotations.get("next_steps")
    if next_steps and firing:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*Next steps*\n{escape_mrkdwn(next_steps)}"[:_MAX_SECTION_CHARS],
                },
            }
        )
    context = [f"fingerprint {event.fingerprint}", f"since {event.starts_at.isoformat()}"]
    runbook = event.annotations.get("runbook_url")
    if runbook:
        context.append(f"<{runbook}|runbook>")
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": " | ".join(context)}]}
    )
    return {"text": text, "blocks": blocks}


def slack_notification_body(notification: Notification) -> dict[str, Any]:
    """The Slack webhook body for a group of alerts (one message for many scopes)."""
    firing, resolved = notification.firing, notification.resolved
    alertname = notification.common_labels.get("alertname") or notification.group_labels.get(
        "alertname", "alerts"
    )
    state = f"FIRING:{len(firing)}" if firing else "RESOLVED"
    marker = ":rotating_light:" if firing else ":white_check_mark:"
    grouped = ", ".join(f"{k}={v}" for k, v in sorted(notification.group_labels.items()))
    headline = f"[{state}] {alertname}" + (f" ({grouped})" if grouped else "")
    summary = notification.common_annotations.get("summary", "")
    text = f"{marker} {headline}" + (f": {summary}" if summary else "")
    lines = []
    for alert in (*firing, *resolved)[:_MAX_LISTED_ALERTS]:
        status = "firing" if alert.status is AlertStatus.FIRING else "resolved"
        detail = alert.annotations.get("summary", "")
        lines.append(f"- {status}: {_scope(alert)}" + (f": {detail}" if detail else ""))
    hidden = len(notification.alerts) - len(lines)
    if hidden > 0:
        lines.append(f"... and {hidden} more")
    body = "\n".join(escape_mrkdwn(line) for line in lines)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{marker} *{escape_mrkdwn(headline)}*"},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": body[:_MAX_SECTION_CHARS]}},
    ]
    next_steps = notification.common_annotations.get("next_steps")
    if next_steps and firing:
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*Next steps*\n{escape_mrkdwn(next_steps)}"[:_MAX_SECTION_CHARS],
                },
            }
        )
    context = f"{len(firing)} firing, {len(resolved)} resolved | group {notification.group_key}"
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape_mrkdwn(context)}]}
    )
    return {"text": text, "blocks": blocks}
