"""Billing's services, by reason to change: `usage` (the daily rows) and `webhook` (billing events)."""
