"""
The trigger engine.

- `conditions` — pure: a rule's condition over numbers and times, with its evidence. No database.
- `runner` — claims due rules, reads their metrics in batches, runs the conditions, raises alerts
  (which also counts usage and notifies), resolves cleared alerts, records what happened.
- `proactive.tasks` — the one beat tick that fans due rules out to workers in chunks.
"""
