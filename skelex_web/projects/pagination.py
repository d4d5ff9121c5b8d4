"""API pagination: 50 per page by default; ``?page_size=N`` (up to 500) for clients that want more
or fewer at a time."""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500
