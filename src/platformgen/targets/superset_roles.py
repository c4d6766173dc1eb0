"""Superset permission sets of the generated roles, as (permission, view menu) pairs of Superset 6.1.

Every pair here exists in a Superset 6.1 metadata database after `superset init` (the Superset check in the
tests asserts it), so `superset fab import-roles`, which creates any pair it is given, never invents one.
Data access (`schema_access`) is added per role by the Superset target.
"""

from __future__ import annotations

Pairs = list[tuple[str, str]]

#: reading dashboards and the charts on them, and nothing else (no Explore, no SQL Lab, no editing)
VIEWER: Pairs = [
    ("can_read", "AdvancedDataType"),
    ("can_time_range", "Api"),
    ("can_list", "AsyncEventsRestApi"),
    ("can_read", "AvailableDomains"),
    ("can_read", "Chart"),
    ("can_read", "CurrentUserRestApi"),
    ("can_read", "Dashboard"),
    ("can_drill", "Dashboard"),
    ("can_view_chart_as_table", "Dashboard"),
    ("can_read", "DashboardFilterStateRestApi"),
    ("can_write", "DashboardFilterStateRestApi"),
    ("can_read", "DashboardPermalinkRestApi"),
    ("can_write", "DashboardPermalinkRestApi"),
    ("menu_access", "Dashboards"),
    ("can_read", "Dataset"),
    ("can_get", "Datasource"),
    ("can_read", "EmbeddedDashboard"),
    ("menu_access", "Home"),
    ("can_recent_activity", "Log"),
    ("can_get", "MenuApi"),
    ("can_this_form_get", "ResetMyPasswordView"),
    ("can_this_form_post", "ResetMyPasswordView"),
    ("can_read", "SecurityRestApi"),
    ("can_dashboard", "Superset"),
    ("can_dashboard_permalink", "Superset"),
    ("can_explore_json", "Superset"),
    ("can_log", "Superset"),
    ("can_read", "Theme"),
    ("can_userinfo", "UserDBModelView"),
    ("resetmypassword", "UserDBModelView"),
]

#: exploring data and building charts and dashboards (Gamma's abilities), on top of the viewer's
ANALYST: Pairs = [
    *VIEWER,
    ("can_query", "Api"),
    ("can_query_form_data", "Api"),
    ("can_export", "Chart"),
    ("can_write", "Chart"),
    ("menu_access", "Charts"),
    ("can_export", "Dashboard"),
    ("can_write", "Dashboard"),
    ("menu_access", "Data"),
    ("can_read", "Database"),
    ("can_get_drill_info", "Dataset"),
    ("menu_access", "Datasets"),
    ("can_external_metadata", "Datasource"),
    ("can_external_metadata_by_name", "Datasource"),
    ("can_read", "Explore"),
    ("can_read", "ExploreFormDataRestApi"),
    ("can_write", "ExploreFormDataRestApi"),
    ("can_read", "ExplorePermalinkRestApi"),
    ("can_write", "ExplorePermalinkRestApi"),
    ("can_csv", "Superset"),
    ("can_explore", "Superset"),
    ("can_fetch_datasource_metadata", "Superset"),
    ("can_share_chart", "Superset"),
    ("can_share_dashboard", "Superset"),
    ("can_slice", "Superset"),
]

#: SQL Lab (the pairs of Superset's built-in sql_lab role)
SQL_LAB: Pairs = [
    ("can_read", "Database"),
    ("can_read", "Query"),
    ("menu_access", "Query Search"),
    ("menu_access", "SQL Editor"),
    ("menu_access", "SQL Lab"),
    ("can_estimate_query_cost", "SQLLab"),
    ("can_execute_sql_query", "SQLLab"),
    ("can_export_csv", "SQLLab"),
    ("can_format_sql", "SQLLab"),
    ("can_get_results", "SQLLab"),
    ("can_read", "SQLLab"),
    ("menu_access", "Saved Queries"),
    ("can_export", "SavedQuery"),
    ("can_read", "SavedQuery"),
    ("can_write", "SavedQuery"),
    ("can_read", "SqlLabPermalinkRestApi"),
    ("can_write", "SqlLabPermalinkRestApi"),
    ("can_sqllab", "Superset"),
    ("can_sqllab_history", "Superset"),
    ("can_activate", "TabStateView"),
    ("can_delete", "TabStateView"),
    ("can_delete_query", "TabStateView"),
    ("can_get", "TabStateView"),
    ("can_migrate_query", "TabStateView"),
    ("can_post", "TabStateView"),
    ("can_put", "TabStateView"),
    ("can_delete", "TableSchemaView"),
    ("can_expanded", "TableSchemaView"),
    ("can_post", "TableSchemaView"),
]


def role_permissions(superset_role: str, *, sql_lab: bool) -> Pairs:
    """The pairs of a generated role, without data access; duplicates removed, order kept.

    Analyst and Viewer are complete roles; for the built-in Alpha and Gamma the generated companion role
    only adds SQL Lab (and, from the target, schema access).
    """
    base = {"Analyst": ANALYST, "Viewer": VIEWER}.get(superset_role, [])
    pairs = base + (SQL_LAB if sql_lab else [])
    return list(dict.fromkeys(pairs))
