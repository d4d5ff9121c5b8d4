"""List filters for the API: a filter on a related row takes its id and only compares it.

django-filter's default for a foreign key looks the id up among every row of the related table, so
``?project=<id>`` answered 400 for an id that does not exist and an empty page for another
project's: a probe for which projects, images and studies exist. Every list is already restricted
to the caller's projects, so comparing the id alone answers both with the same empty page.
"""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator
from django.db import models
from django_filters import rest_framework as filters
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS


class IdFilter(filters.NumberFilter):
    """A related row by its primary key (a whole number)."""

    field_class = forms.IntegerField

    def get_max_validator(self) -> MaxValueValidator:
        # The largest id a database holds: beyond it SQLite's driver raises instead of matching nothing.
        return MaxValueValidator(2**63 - 1)


class FilterSet(filters.FilterSet):
    """Base of every filter set: foreign keys filter by :class:`IdFilter`, never a row look-up."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
    }


class FilterBackend(filters.DjangoFilterBackend):
    """The default filter backend: ``filterset_fields`` are built on :class:`FilterSet`."""

    filterset_base = FilterSet
