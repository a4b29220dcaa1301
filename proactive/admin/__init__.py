"""
The staff console. Rules and metric points are proactive's own; alert and tenant pages are the
alerts and tenants apps' admins, extended here with what only this top layer can read (a rule's
metric, a tenant's rules, widgets and usage together).
"""

from proactive.admin import alert_pages, rules, tenant_pages  # noqa: F401  (they register on import)
