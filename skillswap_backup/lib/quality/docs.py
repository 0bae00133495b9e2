"""Great Expectations Data Docs (static HTML) for one snapshot's validation results.

Built from the JSON results kept in each `TableQuality`, so docs can be produced in another
step or process than the validation, and again later, without reading any data. Tables that
could not be validated at all still get a (failed, empty) page, so the index names every table.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from .results import TableQuality
from .suites import ephemeral_context

SITE = "skillswap_snapshot"


class _CompiledTemplates:
    """An in-memory Jinja bytecode cache (a `jinja2.BytecodeCache`, made when GX is loaded)."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])  # checked against the source's checksum

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


def _share_compiled_templates() -> None:
    """GX gives every part of a site (validation pages, suite pages, index) a Jinja environment
    of its own, which compiles the same templates again: 52 compilations per build. The
    environments are configured alike, so they can share one cache of compiled templates: 24
    compilations, once per process (the first build of the 2M-row bench snapshot's docs took
    0.61 s, now 0.51 s, means of 5)."""
    import jinja2
    from great_expectations.render.view import view

    if getattr(view.DefaultJinjaView, "_shared_templates", None) is not None:
        return
    cache = type("SharedTemplates", (_CompiledTemplates, jinja2.BytecodeCache), {})()
    create = view.DefaultJinjaView.__init__

    def __init__(self, *args, **kwargs):
        create(self, *args, **kwargs)
        self.env.bytecode_cache = cache

    view.DefaultJinjaView.__init__ = __init__
    view.DefaultJinjaView._shared_templates = cache


def _page_name(qualified: str) -> str:
    """The suite's name in the site. GX stores pages under the name's dot-separated parts: it
    refuses a slash or backslash in them, and an empty part (from "..") loses the page. PostgreSQL
    table names may hold all three."""
    escaped = qualified.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return re.sub(r"^\.|\.(?=\.)|\.$", "%2E", escaped)


def build_data_docs(results: list[TableQuality], folder: str | Path, *, run_name: str = "snapshot") -> Path:
    """Write the HTML site into `folder` (replacing what was there); return its index.html."""
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import (
        ExpectationSuiteValidationResult,
        ExpectationSuiteValidationResultSchema,
    )
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    _share_compiled_templates()
    folder = Path(folder).resolve()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    context = ephemeral_context()
    context.add_data_docs_site(
        site_name=SITE,
        site_config={
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    schema = ExpectationSuiteValidationResultSchema()
    for result in results:
        page = _page_name(result.table)
        if result.gx_result:
            validation = schema.load(result.gx_result)
            context.suites.add(
                gx.ExpectationSuite(name=page, expectations=[item.expectation_config for item in validation.results])
            )
        else:
            validation = ExpectationSuiteValidationResult(
                success=False,
                results=[],
                suite_name=page,
                meta={"error": result.error or "not validated"},
            )
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(page), run_id, page)
        context.validation_results_store.set(key, validation)
    context.build_data_docs(site_names=[SITE])
    return folder / "index.html"
