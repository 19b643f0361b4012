"""Limits AWS enforces that both the settings parser and the components check."""

from __future__ import annotations

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# The waiting period KMS accepts before it deletes a key scheduled for deletion (days).
KMS_DELETION_WINDOW_DAYS = (7, 30)


def kms_deletion_window_problems(days: int) -> list[str]:
    """The components' check of a key's deletion window (the parser's bounds are these)."""
    low, high = KMS_DELETION_WINDOW_DAYS
    if low <= days <= high:
        return []
    return [f"kms_deletion_window_days {days}: KMS accepts {low} to {high} days"]
