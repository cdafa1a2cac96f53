"""GX's page views with the project's templates first (`gx/plugins/custom_data_docs/views/`).

GX 1.x looks a template up in its own package before the custom views folder, so a
custom template can only add pages, never replace one. These views put the folder first:
its copies drop the CDN scripts and stylesheets and render the index's table into the
HTML, so Data Docs read offline. Named in great_expectations.yml (data_docs_sites).
"""

from __future__ import annotations

from typing import Any

from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BaseLoader, ChoiceLoader, FileSystemLoader


def _custom_first(view: Any) -> None:
    custom: list[BaseLoader] = [
        FileSystemLoader(folder)
        for folder in (view.custom_views_directory, view.custom_styles_directory)
        if folder
    ]
    view.env.loader = ChoiceLoader([*custom, view.env.loader])


class OfflinePageView(DefaultJinjaPageView):
    """Validation result and suite pages."""

    def __init__(
        self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None
    ) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _custom_first(self)


class OfflineIndexPageView(DefaultJinjaIndexPageView):
    """The site's index.html."""

    def __init__(
        self, custom_styles_directory: str | None = None, custom_views_directory: str | None = None
    ) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        _custom_first(self)
