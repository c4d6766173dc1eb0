"""Superset charts of the spec's chart types (Explore form data) and the dashboard grid they are laid out on.

Metrics are referenced by the name of the dataset's saved metric (`metric_name`), so a chart and its dataset
agree on one definition. Charts fill rows of the 12-column grid in spec order; a chart that does not fit in
what is left of a row starts the next one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from platformgen.spec.models import Chart

TIME_GRAINS = {"hour": "PT1H", "day": "P1D", "week": "P1W", "month": "P1M", "quarter": "P3M", "year": "P1Y"}
VIZ_TYPES = {
    "big_number": "big_number_total",
    "line": "echarts_timeseries_line",
    "bar": "echarts_timeseries_bar",
    "area": "echarts_area",
    "table": "table",
    "pie": "pie",
}
GRID_COLUMNS = 12
CHART_HEIGHT = 50
_SIMPLE_METRIC = re.compile(r"^\s*([a-z_]+)\s*\(\s*(\*|[a-z_][a-z0-9_]*)\s*\)\s*$", re.IGNORECASE)


def metric_name(expression: str) -> str:
    """`sum(revenue_eur)` -> `sum__revenue_eur`, `count(*)` -> `count`; other expressions get a slug and a hash."""
    match = _SIMPLE_METRIC.match(expression)
    if match:
        func, column = match.group(1).lower(), match.group(2).lower()
        return func if column == "*" else f"{func}__{column}"
    slug = re.sub(r"[^a-z0-9]+", "_", expression.lower()).strip("_")[:40]
    digest = hashlib.sha256(expression.strip().encode("utf-8")).hexdigest()[:8]
    return f"{slug}_{digest}"


def grid_position(title: str, charts: list[tuple[Chart, str]]) -> dict[str, Any]:
    """A dashboard's ``position``: header, grid, rows of at most 12 columns, one CHART node per (chart, uuid)."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"id": "ROOT_ID", "type": "ROOT", "children": ["GRID_ID"]},
        "GRID_ID": {"id": "GRID_ID", "type": "GRID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": title}},
    }
    rows: list[list[str]] = []
    row: list[str] = []
    row_width = 0
    for index, (chart, chart_uuid) in enumerate(charts, start=1):
        if row and row_width + chart.width > GRID_COLUMNS:
            rows.append(row)
            row, row_width = [], 0
        chart_id = f"CHART-{index}"
        row.append(chart_id)
        row_width += chart.width
        position[chart_id] = {
            "id": chart_id,
            "type": "CHART",
            "children": [],
            "meta": {
                "chartId": index,  # any int: the importer maps it to the chart's new id
                "uuid": chart_uuid,
                "width": chart.width,
                "height": CHART_HEIGHT,
                "sliceName": chart.title,
            },
        }
    if row:
        rows.append(row)
    for number, members in enumerate(rows, start=1):
        row_id = f"ROW-{number}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {
            "id": row_id,
            "type": "ROW",
            "children": members,
            "parents": ["ROOT_ID", "GRID_ID"],
            "meta": {"background": "BACKGROUND_TRANSPARENT"},
        }
        for chart_id in members:
            position[chart_id]["parents"] = ["ROOT_ID", "GRID_ID", row_id]
    return position


def chart_params(chart: Chart) -> dict[str, Any]:
    """Explore form data of one chart; metrics refer to the dataset's saved metrics by name."""
    viz = VIZ_TYPES[chart.type]
    metric = metric_name(chart.metric) if chart.metric else None
    filters: list[dict[str, Any]] = []
    temporal = chart.x if chart.type in ("line", "bar", "area") else None
    if temporal:
        filters.append(
            {
                "clause": "WHERE",
                "expressionType": "SIMPLE",
                "subject": temporal,
                "operator": "TEMPORAL_RANGE",
                "comparator": "No filter",
            }
        )
    for condition in chart.filters:
        digest = hashlib.sha256(condition.encode("utf-8")).hexdigest()[:12]
        filters.append(
            {
                "clause": "WHERE",
                "expressionType": "SQL",
                "sqlExpression": condition,
                "filterOptionName": f"filter_{digest}",
            }
        )
    params: dict[str, Any] = {"viz_type": viz, "adhoc_filters": filters}
    if chart.type == "big_number":
        params.update({"metric": metric, "header_font_size": 0.4, "subheader_font_size": 0.15})
        params["y_axis_format"] = "SMART_NUMBER"
    elif chart.type in ("line", "bar", "area"):
        x_axis = chart.x or chart.dimension
        groupby = [chart.dimension] if chart.dimension and chart.dimension != x_axis else []
        if x_axis:
            params["x_axis"] = x_axis
        if chart.x and chart.time_grain:
            params["time_grain_sqla"] = TIME_GRAINS[chart.time_grain]
        params.update(
            {
                "metrics": [metric],
                "groupby": groupby,
                "row_limit": chart.limit or 10000,
                "order_desc": True,
                "show_legend": True,
                "rich_tooltip": True,
                "x_axis_time_format": "smart_date",
                "y_axis_format": "SMART_NUMBER",
                "color_scheme": "supersetColors",
            }
        )
        if chart.type == "area":
            params.update({"stack": "Stack" if groupby else None, "opacity": 0.2})
    elif chart.type == "pie":
        params.update(
            {
                "groupby": [chart.dimension],
                "metric": metric,
                "row_limit": chart.limit or 100,
                "sort_by_metric": True,
                "show_labels": True,
                "show_legend": True,
                "label_type": "key_percent",
                "donut": False,
                "color_scheme": "supersetColors",
            }
        )
    else:  # table: raw columns, or grouped by the columns when it has a metric
        if metric:
            params.update({"query_mode": "aggregate", "groupby": list(chart.columns), "metrics": [metric]})
        else:
            params.update({"query_mode": "raw", "all_columns": list(chart.columns)})
        params.update(
            {
                "row_limit": chart.limit or 1000,
                "order_desc": True,
                "include_search": True,
                "table_timestamp_format": "smart_date",
            }
        )
    return params
