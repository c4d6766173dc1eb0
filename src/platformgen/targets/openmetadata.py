"""OpenMetadata target: ingestion workflows for `metadata ingest` and the governance payloads of the spec.

Generated under ``openmetadata/`` (OpenMetadata 1.x ``OpenMetadataWorkflowConfig``, checked against the
``openmetadata-ingestion`` models in the tests; every credential is a ``${VAR}`` that ``metadata ingest``
expands with ``os.path.expandvars`` when it loads the file):

- ``workflows/warehouse.yaml``: DatabaseMetadata of the raw, staging, intermediate and marts schemas. The
  connection reads ``PLATFORMGEN_WAREHOUSE_HOST``/``_PORT``/``_USER``/``_DBNAME`` and
  ``DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD``: the variables the runtime exports with the resolved
  warehouse connection (spec fields, ``env:`` references or an Airflow ``conn_id``) before it runs
  ``metadata ingest``, as it does for dbt.
- ``workflows/dbt.yaml``: dbt artifacts (manifest, catalog, run results) of ``${PLATFORMGEN_PROJECT_ROOT}/dbt/target``
  onto the warehouse service; descriptions, owners (dbt ``meta.owner``) and tags (under the platform's
  classification) come along, lineage from the manifest.
- ``workflows/storage.yaml``: the MinIO buckets of the medallion layers (S3 with ``endPointURL``).
- ``workflows/airflow.yaml``: the Airflow pipelines through Airflow's REST API (basic auth of the spec's first
  Admin user, falling back to ``AIRFLOW_API_USER``/``AIRFLOW_API_PASSWORD``).
- ``governance.json``: users, teams, classifications and tags, the glossary and its terms, and per table the
  owners, tags, column classifications and glossary terms, applied idempotently by
  ``platformgen.deploy.openmetadata.apply_governance``. Classifications of columns (pii, ...) are tags of the
  mutually exclusive ``DataClassification`` classification; spec tags are tags of a classification named
  after the platform (the dbt workflow files dbt tags there too).
"""

from __future__ import annotations

from typing import Any

from platformgen.plan.build import Plan, PlanColumn
from platformgen.render import dump_json, dump_yaml
from platformgen.spec.types import ENV_REF_RE
from platformgen.targets.base import Files

OM_DIR = "openmetadata"
SERVER = "http://openmetadata-server:8585/api"  # the Compose service
TOKEN_VAR = "OPENMETADATA_JWT_TOKEN"
AIRFLOW_URL = "http://airflow-webserver:8080"
CLASSIFICATION = "DataClassification"
WAREHOUSE_VARS = {
    "host": "PLATFORMGEN_WAREHOUSE_HOST",
    "port": "PLATFORMGEN_WAREHOUSE_PORT",
    "user": "PLATFORMGEN_WAREHOUSE_USER",
    "dbname": "PLATFORMGEN_WAREHOUSE_DBNAME",
    "password": "DBT_ENV_SECRET_PLATFORMGEN_WAREHOUSE_PASSWORD",
}
PROJECT_ROOT_VAR = "PLATFORMGEN_PROJECT_ROOT"
WORKFLOWS = ("warehouse", "dbt", "storage", "airflow")
GOVERNANCE_FILE = f"{OM_DIR}/governance.json"


def var(name: str) -> str:
    """A ``${NAME}`` reference."""
    return f"${{{name}}}"


def value_or_var(value: Any) -> str:
    """A spec value: env:VAR becomes ${VAR}, anything else its text."""
    match = ENV_REF_RE.match(value) if isinstance(value, str) else None
    return var(match.group(1)) if match else str(value)


def service_names(plan: Plan) -> dict[str, str]:
    """OpenMetadata service name per workflow (the dbt workflow writes onto the warehouse service)."""
    return {
        "warehouse": f"{plan.name}_warehouse",
        "dbt": f"{plan.name}_warehouse",
        "storage": f"{plan.name}_minio",
        "airflow": f"{plan.name}_airflow",
    }


def workflow_files(plan: Plan) -> dict[str, str]:
    """Workflow name -> path relative to the project root (what the sync DAG runs)."""
    return {name: f"{OM_DIR}/workflows/{name}.yaml" for name in WORKFLOWS}


def _workflow(source: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": source,
        "sink": {"type": "metadata-rest", "config": {}},
        "workflowConfig": {
            "loggerLevel": "INFO",
            "openMetadataServerConfig": {
                "hostPort": SERVER,
                "authProvider": "openmetadata",
                "securityConfig": {"jwtToken": var(TOKEN_VAR)},
            },
        },
    }


def _schemas(plan: Plan) -> list[str]:
    s = plan.warehouse.schemas
    return [s.raw, s.staging, s.intermediate, s.marts]


def warehouse_workflow(plan: Plan) -> dict[str, Any]:
    """DatabaseMetadata of the warehouse's layer schemas."""
    w = WAREHOUSE_VARS
    return _workflow(
        {
            "type": "postgres",
            "serviceName": service_names(plan)["warehouse"],
            "serviceConnection": {
                "config": {
                    "type": "Postgres",
                    "username": var(w["user"]),
                    "authType": {"password": var(w["password"])},
                    "hostPort": f"{var(w['host'])}:{var(w['port'])}",
                    "database": var(w["dbname"]),
                    "sslMode": plan.warehouse.connection.sslmode,
                }
            },
            "sourceConfig": {
                "config": {
                    "type": "DatabaseMetadata",
                    "markDeletedTables": True,
                    "includeTables": True,
                    "includeViews": True,
                    "schemaFilterPattern": {"includes": [f"^{name}$" for name in _schemas(plan)]},
                }
            },
        }
    )


def dbt_workflow(plan: Plan) -> dict[str, Any]:
    """dbt artifacts of the compiled project, onto the warehouse service."""
    target = f"{var(PROJECT_ROOT_VAR)}/dbt/target"
    return _workflow(
        {
            "type": "dbt",
            "serviceName": service_names(plan)["dbt"],
            "sourceConfig": {
                "config": {
                    "type": "DBT",
                    "dbtConfigSource": {
                        "dbtConfigType": "local",
                        "dbtManifestFilePath": f"{target}/manifest.json",
                        "dbtCatalogFilePath": f"{target}/catalog.json",
                        "dbtRunResultsFilePath": f"{target}/run_results.json",
                    },
                    "dbtUpdateDescriptions": True,
                    "dbtUpdateOwners": True,
                    "includeTags": True,
                    "dbtClassificationName": plan.name,
                    "schemaFilterPattern": {"includes": [f"^{name}$" for name in _schemas(plan)]},
                }
            },
        }
    )


def storage_workflow(plan: Plan) -> dict[str, Any]:
    """The MinIO buckets as an S3 storage service."""
    storage = plan.storage
    return _workflow(
        {
            "type": "s3",
            "serviceName": service_names(plan)["storage"],
            "serviceConnection": {
                "config": {
                    "type": "S3",
                    "awsConfig": {
                        "awsAccessKeyId": value_or_var(storage.access_key),
                        "awsSecretAccessKey": value_or_var(storage.secret_key),
                        "awsRegion": storage.region,
                        "endPointURL": value_or_var(storage.endpoint),
                    },
                    "bucketNames": [storage.buckets.bronze, storage.buckets.silver, storage.buckets.gold],
                }
            },
            "sourceConfig": {"config": {"type": "StorageMetadata", "markDeletedContainers": True}},
        }
    )


def airflow_credentials(plan: Plan) -> tuple[str, str]:
    """User and password of the Airflow REST API: the spec's first Admin (else first) user, or variables."""
    users = plan.orchestration.users
    user = next((u for u in users if u.role == "Admin"), users[0] if users else None)
    if user is None:
        return var("AIRFLOW_API_USER"), var("AIRFLOW_API_PASSWORD")
    return user.username, value_or_var(user.password)


def airflow_workflow(plan: Plan) -> dict[str, Any]:
    """The platform's Airflow DAGs as a pipeline service, read through Airflow's REST API."""
    username, password = airflow_credentials(plan)
    names = service_names(plan)
    return _workflow(
        {
            "type": "airflow",
            "serviceName": names["airflow"],
            "serviceConnection": {
                "config": {
                    "type": "Airflow",
                    "hostPort": AIRFLOW_URL,
                    "numberOfStatus": 10,
                    "connection": {
                        "type": "RestAPI",
                        "authConfig": {"username": username, "password": password},
                        "apiVersion": "v1",
                    },
                }
            },
            "sourceConfig": {
                "config": {
                    "type": "PipelineMetadata",
                    "includeOwners": True,
                    "includeTags": True,
                    "markDeletedPipelines": True,
                    "pipelineFilterPattern": {"includes": [f"^{plan.name}__"]},
                    "lineageInformation": {
                        "dbServiceNames": [names["warehouse"]],
                        "storageServiceNames": [names["storage"]],
                    },
                }
            },
        }
    )


# --------------------------------------------------------------------------- governance


def glossary_name(plan: Plan) -> str:
    """The glossary of the platform (apart from the platform's tag classification, which has the plain name)."""
    return f"{plan.name}_glossary"


def user_name(email: str) -> str:
    """The OpenMetadata user name of an e-mail address (its local part, lower case)."""
    return email.split("@", 1)[0].lower()


def fqn_part(name: str) -> str:
    """A name inside a fully qualified name: quoted when it holds a dot."""
    return f'"{name}"' if "." in name else name


def _owner(owner: str) -> dict[str, str]:
    return {"type": "user", "name": user_name(owner)} if "@" in owner else {"type": "team", "name": owner}


def _column_tags(plan: Plan, columns: tuple[PlanColumn, ...]) -> dict[str, list[str]]:
    tagged: dict[str, list[str]] = {}
    for column in columns:
        tags = [f"{CLASSIFICATION}.{column.classification}"] if column.classification else []
        tags += [f"{plan.name}.{tag}" for tag in column.tags]
        if tags:
            tagged[column.name] = tags
    return tagged


def governance(plan: Plan) -> dict[str, Any]:
    """The payloads ``apply_governance`` sends, in dependency order; names instead of ids."""
    gov = plan.governance
    emails = sorted(
        {m for t in gov.teams.values() for m in t.members}
        | {m for r in gov.roles.values() for m in r.members}
        | {o for o in _owners(plan) if "@" in o}
    )
    teams = [
        {
            "name": name,
            "displayName": name,
            "description": team.description or f"Team {name}",
            "teamType": "Group",
            "email": team.email,
            "users": [user_name(m) for m in team.members],
        }
        for name, team in sorted(gov.teams.items())
    ]
    classifications = [
        {
            "name": CLASSIFICATION,
            "description": "How sensitive the data is (from the platformgen spec)",
            "mutuallyExclusive": True,
        },
        {"name": plan.name, "description": f"Tags of the {plan.name} platform", "mutuallyExclusive": False},
    ]
    tags = [
        {"classification": CLASSIFICATION, "name": name, "description": text}
        for name, text in sorted(gov.classifications.items())
    ] + [
        {"classification": plan.name, "name": name, "description": text}
        for name, text in sorted(_all_tags(plan).items())
    ]
    terms = [
        {
            "glossary": glossary_name(plan),
            "name": term,
            "displayName": term,
            "description": spec.description,
            "synonyms": list(spec.synonyms),
        }
        for term, spec in sorted(gov.glossary.items())
    ]
    glossaries = (
        [
            {
                "name": glossary_name(plan),
                "displayName": f"{plan.name} glossary",
                "description": plan.platform.description or f"Business terms of {plan.name}",
            }
        ]
        if terms
        else []
    )
    return {
        "users": [{"name": user_name(e), "email": e, "displayName": e} for e in emails],
        "teams": teams,
        "classifications": classifications,
        "tags": tags,
        "glossaries": glossaries,
        "glossaryTerms": terms,
        "tables": _tables(plan),
    }


def _owners(plan: Plan) -> set[str]:
    owners = {plan.platform.owner, *(m.owner for m in plan.models), *(t.owner for t in plan.tables)}
    owners |= {d.owner for d in plan.dashboards if d.owner}
    return owners


def _all_tags(plan: Plan) -> dict[str, str]:
    declared = dict(plan.governance.tags)
    used = {t for m in plan.models for t in m.spec.tags}
    used |= {t for s in plan.sources for t in s.spec.tags}
    used |= {t for table in plan.tables for t in table.spec.tags}
    used |= {t for m in plan.models for c in m.columns for t in c.tags}
    used |= {t for table in plan.tables for c in table.columns for t in c.tags}
    for tag in sorted(used - set(declared)):
        declared[tag] = f"Tag {tag} of the {plan.name} platform"
    return declared


def _tables(plan: Plan) -> list[dict[str, Any]]:
    service = service_names(plan)["warehouse"]
    database = fqn_part(value_or_var(plan.warehouse.connection.database))
    schemas = plan.warehouse.schemas
    terms: dict[str, list[str]] = {}
    for term, spec in plan.governance.glossary.items():
        for dataset in spec.datasets:
            terms.setdefault(dataset, []).append(f"{fqn_part(glossary_name(plan))}.{fqn_part(term)}")
    entries: list[dict[str, Any]] = []

    def add(schema: str, table: str, owner: str, tags: list[str], columns: dict[str, list[str]], key: str) -> None:
        entries.append(
            {
                "fqn": f"{service}.{database}.{schema}.{table}",
                "owners": [_owner(owner)],
                "tags": [f"{plan.name}.{t}" for t in dict.fromkeys(tags)],
                "glossaryTerms": sorted(terms.get(key, [])),
                "columns": columns,
            }
        )

    for source in plan.sources:
        for table in source.tables:
            tags = [*source.spec.tags, *table.spec.tags]
            add(schemas.raw, table.raw_table, table.owner, tags, _column_tags(plan, table.columns), "")
            silver = _column_tags(plan, table.silver_columns)
            add(schemas.staging, table.staging_model, table.owner, tags, silver, table.key)
    for model in plan.models:
        add(model.schema, model.name, model.owner, list(model.spec.tags), _column_tags(plan, model.columns), model.name)
    return entries


class OpenMetadataTarget:
    """`openmetadata/`: ingestion workflows and governance payloads."""

    name = "openmetadata"
    description = "OpenMetadata ingestion workflows and governance"

    def render(self, plan: Plan) -> Files:
        builders = {
            "warehouse": warehouse_workflow,
            "dbt": dbt_workflow,
            "storage": storage_workflow,
            "airflow": airflow_workflow,
        }
        files: Files = {path: dump_yaml(builders[name](plan)) for name, path in workflow_files(plan).items()}
        files[GOVERNANCE_FILE] = dump_json(governance(plan))
        return files
