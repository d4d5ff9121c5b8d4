"""Reads behind the pages: the worklist (filters and active-learning order), a project's progress
counts, and an image's neighbours in the worklist for the viewer's next/previous.

Kept apart from the API's selectors because the pages show aggregates the API does not serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Exists, F, Func, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum

from skelex_web.labeling.models import Annotation, AnnotationKind, Suggestion, SuggestionState
from skelex_web.learning.services import outdated
from skelex_web.projects.models import IGNORE_FOCUS, SAMPLING, Membership, Project
from skelex_web.projects.permissions import member_projects
from skelex_web.projects.schema import head_names
from skelex_web.studies.models import Image, ImageStatus

FILTER_KEYS = ("status", "label", "body_part", "suggestions", "labelled")
# Worklist filter on suggestions: any state of SuggestionState, or "none" (no suggestions at all).
SUGGESTION_FILTERS = [*SuggestionState.values, "none"]


def count_of(rows: QuerySet[Any]) -> Subquery:
    """How many of ``rows`` (a queryset correlated with ``OuterRef``) there are, as a subquery per
    outer row. Unlike ``Count`` over a join, it neither multiplies the outer rows nor groups the
    whole table before a ``LIMIT``: the database counts only for the rows it hands back."""
    counted = rows.order_by().annotate(n=Func(F("pk"), function="COUNT", output_field=IntegerField()))
    return Subquery(counted.values("n"), output_field=IntegerField())


def project_rows(user: Any) -> list[dict[str, Any]]:
    """The project list: each of ``user``'s projects with their role and its image count, in one query."""
    projects = (
        member_projects(user)
        .annotate(
            my_role=Subquery(Membership.objects.filter(project=OuterRef("pk"), user=user).values("role")[:1]),
            n_images=count_of(Image.objects.filter(project=OuterRef("pk"))),
        )
        .order_by("name", "id")
    )
    return [{"project": p, "role": p.my_role, "images": p.n_images} for p in projects]


@dataclass(frozen=True)
class WorklistFilters:
    """The worklist's filters as the query string carries them (empty = no filter)."""

    status: str = ""
    label: str = ""
    body_part: str = ""
    suggestions: str = ""
    labelled: str = ""  # "yes": any live label (box or findings answer), "no": none yet

    @classmethod
    def from_query(cls, query: Any) -> WorklistFilters:
        return cls(**{k: (query.get(k) or "").strip() for k in FILTER_KEYS})

    def as_query(self) -> dict[str, str]:
        return {k: v for k in FILTER_KEYS if (v := getattr(self, k))}


def worklist(project: Project, filters: WorklistFilters) -> QuerySet[Image]:
    """The project's images filtered, highest active-learning priority first (unscored last), then by
    id. The order stays put as images get labelled, so N in the viewer goes on to the next one;
    ``is_labelled`` marks those whose priority (and reason) is from before they were labelled, and
    the ``labelled=no`` filter is the list of what is left to do."""
    qs = Image.objects.filter(project=project).annotate(
        is_labelled=Exists(Annotation.objects.filter(image=OuterRef("pk"), is_deleted=False))
    )
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.body_part:
        qs = qs.filter(body_part=filters.body_part)
    if filters.label:
        qs = qs.filter(
            Exists(
                Annotation.objects.filter(
                    image=OuterRef("pk"), kind=AnnotationKind.BOX, label=filters.label, is_deleted=False
                )
            )
        )
    if filters.labelled in ("yes", "no"):
        qs = qs.filter(is_labelled=filters.labelled == "yes")
    if filters.suggestions == "none":
        qs = qs.filter(~Exists(Suggestion.objects.filter(image=OuterRef("pk"))))
    elif filters.suggestions:
        qs = qs.filter(Exists(Suggestion.objects.filter(image=OuterRef("pk"), state=filters.suggestions)))
    return qs.order_by(F("al_priority").desc(nulls_last=True), "id")


def annotate_for_list(qs: QuerySet[Image]) -> QuerySet[Image]:
    """Adds the per-image counts the worklist shows (boxes, findings answers, pending suggestions),
    each a subquery rather than a join and GROUP BY over every image of the project: PostgreSQL
    counts for the page's images only, after the ordering and LIMIT."""
    live = Annotation.objects.filter(image=OuterRef("pk"), is_deleted=False)
    return qs.annotate(
        n_boxes=count_of(live.filter(kind=AnnotationKind.BOX)),
        n_answers=count_of(live.filter(kind=AnnotationKind.HEAD)),
        # Box suggestions, as the viewer lists them (a head prediction is shown with its finding).
        n_pending=count_of(
            Suggestion.objects.filter(image=OuterRef("pk"), state=SuggestionState.PENDING, kind=AnnotationKind.BOX)
        ),
    )


def neighbours(project: Project, filters: WorklistFilters, image_id: int) -> tuple[int | None, int | None]:
    """(previous, next) image ids around ``image_id`` in worklist order; None at the ends.

    An image outside the filtered list (opened directly) gets the list's first image as "next".
    """
    ids = list(worklist(project, filters).values_list("id", flat=True))
    if image_id not in ids:
        return None, (ids[0] if ids else None)
    i = ids.index(image_id)
    return (ids[i - 1] if i > 0 else None), (ids[i + 1] if i + 1 < len(ids) else None)


@dataclass
class ProjectSummary:
    total: int = 0
    labelled: int = 0
    by_status: list[tuple[str, str, int]] = field(default_factory=list)  # (value, label, count)
    suggestions: dict[str, int] = field(default_factory=dict)
    by_user: list[dict[str, Any]] = field(default_factory=list)
    body_parts: list[str] = field(default_factory=list)

    @property
    def labelled_percent(self) -> float:
        return 100.0 * self.labelled / self.total if self.total else 0.0


def project_summary(project: Project) -> ProjectSummary:
    """Progress of a project: images by status, labelled vs total, suggestion outcomes, who labelled what."""
    images = Image.objects.filter(project=project)
    live = Annotation.objects.filter(project=project, is_deleted=False)
    counts = dict(images.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    summary = ProjectSummary(
        total=images.count(),
        labelled=images.filter(Exists(live.filter(image=OuterRef("pk")))).count(),
        by_status=[(value, label, counts.get(value, 0)) for value, label in ImageStatus.choices],
    )
    states = dict(
        Suggestion.objects.filter(project=project)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    summary.suggestions = {state: states.get(state, 0) for state in SuggestionState.values}
    summary.by_user = list(
        live.values("author__username")
        .annotate(
            images=Count("image", distinct=True),
            boxes=Count("id", filter=Q(kind=AnnotationKind.BOX)),
            heads=Count("id", filter=Q(kind=AnnotationKind.HEAD)),
            accepted=Count("id", filter=Q(origin="suggestion-accepted")),
            edited=Count("id", filter=Q(origin="suggestion-edited")),
            imported=Count("id", filter=Q(origin="imported")),
            time_ms=Sum("time_spent_ms"),
        )
        .order_by("-images", "author__username")
    )
    for row in summary.by_user:
        # No author: labels imported without --user, or a user deleted since (their rows stay).
        imported = row.pop("imported")
        nobody = "(imported)" if imported == row["boxes"] + row["heads"] else "(imported or deleted user)"
        row["username"] = row.pop("author__username") or (nobody if imported else "(deleted user)")
        row["time_min"] = round((row.pop("time_ms") or 0) / 60000, 1)
    summary.body_parts = body_parts(project)
    return summary


def body_parts(project: Project) -> list[str]:
    """The body parts present in the project (for the worklist filter)."""
    # order_by() first: Image's default ordering (id) would make the DISTINCT one row per image.
    parts = Image.objects.filter(project=project).exclude(body_part="").order_by().values_list("body_part", flat=True)
    return sorted(parts.distinct())


def learning_summary(project: Project) -> dict[str, Any]:
    """The active-learning section of the project page: curve (SVG), rounds, labels since the last."""
    from skelex_web.learning import loop
    from skelex_web.learning.plots import learning_curve_svg

    rounds = loop.learning_curve(project)
    heads = head_names(project.label_schema)
    table = [
        {**r, "number": n, "aurocs": [r["heads"].get(h, {}).get("auroc") for h in heads]}
        for n, r in reversed(list(enumerate(rounds, 1)))
    ]  # newest first, numbered in the order they ran
    return {
        "svg": learning_curve_svg(rounds),
        "rounds": table,
        "heads": heads,
        "since_last": loop.labels_since_last_round(project),
        "every": project.setting("retrain_every"),
        "sampling": project.setting("sampling"),
        "focus": project.setting("focus"),
        "focus_note": focus_note(project, heads, rounds),
        # Analysed with earlier settings or another backbone: left out of rounds until analysed again.
        "outdated": outdated(project).count(),
        "sampling_choices": list(SAMPLING.items()),
        "queue": queue_summary(project),
        "comparison": comparison_summary(project),
    }


def focus_note(project: Project, heads: list[str], rounds: list[dict[str, Any]]) -> str:
    """Why the project's focus finding does not rank the queue, when it does not ('' when it does
    or there is none)."""
    focus = project.setting("focus")
    if not focus:
        return ""
    if focus not in heads:
        return f"{focus} is no longer a finding of this project: the queue is ranked for every finding."
    if (sampling := project.setting("sampling")) in IGNORE_FOCUS:
        return f"{sampling} does not use the model's answers, so putting {focus} first changes nothing with it."
    if rounds and rounds[-1].get("focus_waiting") == focus:
        return (
            f"{focus} has no two different answers yet: the queue is ranked for every finding until it has "
            "(the next round after that puts it first)."
        )
    return ""


def comparison_summary(project: Project) -> dict[str, Any]:
    """The latest ranking comparison as the page shows it: a table of each ranking's gain over
    random order per finding (rows: rankings; ``better``/``worse`` when the interval excludes 0)."""
    from skelex_web.learning import loop
    from skelex_web.learning.services import COMPARE_MIN_LABELLED, comparison_pending, latest_comparison

    latest = latest_comparison(project)
    labelled = loop.learnable_images(project).count()
    out: dict[str, Any] = {
        "pending": comparison_pending(project),
        "latest": latest,
        "labelled": labelled,
        "needed": COMPARE_MIN_LABELLED,
        "too_few": labelled < COMPARE_MIN_LABELLED,
    }
    if latest and latest.get("status") == "done":
        gains = latest.get("gains") or {}
        findings = list(gains)
        rows = []
        for ranking in latest.get("rankings", []):
            cells = []
            for finding in findings:
                g = gains[finding].get(ranking) or {}
                verdict = "better" if (g.get("lo") or 0) > 0 else "worse" if (g.get("hi") or 0) < 0 else ""
                cells.append({**g, "verdict": verdict})
            mean = (latest.get("mean_gains") or {}).get(ranking)
            rows.append(
                {"ranking": ranking, "cells": cells, "mean": mean, "in_use": ranking == latest.get("ranking_in_use")}
            )
        out.update(findings=findings, rows=rows, labels=_labels_needed_rows(latest, findings))
    return out


def _labels_needed_rows(latest: dict[str, Any], findings: list[str]) -> dict[str, Any] | None:
    """The comparison's second table: per ranking (random order last) and finding, the labels it
    needed to reach 95% of the AUROC of every pool label, and that as a share of random order's
    (``better``/``worse`` when the share's interval lies below/above 1). None for summaries written
    before the table existed."""
    needed = latest.get("labels_needed")
    if not needed:
        return None
    s = latest.get("settings") or {}
    rows = []
    for ranking in [*latest.get("rankings", []), "random"]:
        cells = []
        for finding in findings:
            c = (needed.get(finding) or {}).get("rankings", {}).get(ranking) or {}
            ci = c.get("ratio_ci") or [None, None]
            verdict = (
                "better" if ci[1] is not None and ci[1] < 1 else "worse" if ci[0] is not None and ci[0] > 1 else ""
            )
            cells.append(
                {"labels": c.get("labels"), "ratio": c.get("ratio"), "lo": ci[0], "hi": ci[1], "verdict": verdict}
            )
        rows.append({"ranking": ranking, "cells": cells, "in_use": ranking == latest.get("ranking_in_use")})
    columns = [{"finding": f, "full": (needed.get(f) or {}).get("full_data_auroc")} for f in findings]
    return {"rows": rows, "columns": columns, "most": s.get("initial", 0) + s.get("budget", 0) * s.get("rounds", 0)}


def queue_summary(project: Project) -> dict[str, int]:
    """What the labelling queue holds (unlabelled images that did not fail analysis), by how the
    last round placed them: picked first, ordered by uncertainty, waiting for labels (cold start
    put them after its typical images), not ranked yet (new since the last round); and how many
    are open in a viewer now."""
    from skelex_web.learning.loop import fresh_claim, unlabelled

    queue = unlabelled(Image.objects.filter(project=project).exclude(status=ImageStatus.FAILED))
    waiting = Q(al_priority__lte=1) & Q(al_reason__startswith="after this round")
    return queue.aggregate(
        total=Count("id"),
        picked=Count("id", filter=Q(al_priority__gt=1)),
        by_uncertainty=Count("id", filter=Q(al_priority__lte=1) & ~waiting),
        waiting=Count("id", filter=waiting),
        unranked=Count("id", filter=Q(al_priority__isnull=True)),
        open_now=Count("id", filter=fresh_claim()),
    )


def export_summary(project: Project) -> dict[str, Any]:
    """The export section (leads only): formats, image modes and the latest export jobs."""
    from skelex_web.exports.models import DatasetVersion, ExportFormat, ExportJob, ImageMode

    jobs = list(ExportJob.objects.filter(version__project=project).select_related("version").order_by("-id")[:10])
    for job in jobs:
        job.filters_text = filters_text(job.version.filters or {})
    versions = DatasetVersion.objects.filter(project=project).order_by("-number")[:50]
    return {"formats": ExportFormat.choices, "image_modes": ImageMode.choices, "jobs": jobs, "versions": list(versions)}


def filters_text(filters: dict[str, Any]) -> str:
    """A dataset version's filters in a few words ("all labels" when none narrows it)."""
    words = []
    if filters.get("reviewed_only"):
        words.append("reviewed only")
    if filters.get("include_unlabelled"):
        words.append("with unlabelled")
    for key in ("labels", "heads", "body_parts", "origins"):
        if filters.get(key) is not None:
            words.append(f"{key.replace('_', ' ')}: {', '.join(filters[key]) or 'none'}")
    return "; ".join(words) or "all labels"


def upload_summary(user: Any, project: Project) -> dict[str, Any]:
    """The add-images section (annotators and above): limits and the latest queued uploads you may read."""
    from django.conf import settings

    from skelex_web.studies.selectors import upload_jobs_for
    from skelex_web.studies.uploads import INLINE_MAX_BYTES, INLINE_MAX_FILES

    return {
        "inline_files": INLINE_MAX_FILES,
        "inline_mb": INLINE_MAX_BYTES // (1024 * 1024),
        "max_mb": settings.MAX_UPLOAD_BYTES // (1024 * 1024),
        "jobs": list(upload_jobs_for(user, project).defer("results")[:10]),
    }
