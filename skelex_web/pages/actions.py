"""Actions on the project page: add images and take the next image of the labelling queue
(annotators and above); start a training round, choose how rounds rank the queue, export a dataset
version, manage the members and delete the project (leads). From the viewer: delete the image on
screen (leads).

Plain HTML form posts (CSRF-protected) that call the same services as the API, then redirect
back to the project page with a message.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.exceptions import ValidationError

from skelex_web.exports import services as exports
from skelex_web.exports.models import SPLIT_SEED_MAX, DatasetVersion, ExportFormat, ImageMode
from skelex_web.learning import loop
from skelex_web.learning.services import COMPARE_MIN_LABELLED, compare_on_demand, reanalyse_outdated
from skelex_web.pages.templatetags.flash import at
from skelex_web.projects import services as projects
from skelex_web.projects.models import SAMPLING, Membership, Project, Role
from skelex_web.projects.permissions import get_project_for
from skelex_web.projects.schema import head_names
from skelex_web.studies import services as studies
from skelex_web.studies.models import Image
from skelex_web.studies.services import REJECTED, summarise
from skelex_web.studies.uploads import QueueUnavailable, receive_uploads

# Per-file refusals shown after an inline upload; the rest are counted.
SHOWN_REFUSALS = 10
# Forms in a section of the project page redirect back to it; their messages are shown there.
AT_LEARNING = at("learning")
AT_MEMBERS = at("members")
AT_DELETE = at("delete")
QUEUE_EMPTY = "The labelling queue is empty: every image is labelled or open in someone else's viewer."


def _project_for(request: HttpRequest, project_id: int, minimum: str) -> Project:
    """The project if your role reaches ``minimum``; 404 for non-members, 403 (Django's page) otherwise."""
    try:
        return get_project_for(request.user, project_id, minimum)
    except ApiPermissionDenied as exc:
        raise PermissionDenied(str(exc.detail)) from None


def _lead_project(request: HttpRequest, project_id: int) -> Project:
    return _project_for(request, project_id, Role.LEAD)


@login_required
@require_POST
def upload(request: HttpRequest, project_id: int) -> HttpResponse:
    """Files and zips from the project page's form: small uploads at once, larger ones queued."""
    project = _project_for(request, project_id, Role.ANNOTATOR)
    back = redirect("pages:project-detail", project.pk)
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, "Nothing uploaded: choose one or more DICOM, PNG, JPEG or TIFF files or zips.")
        return back
    total = sum(f.size or 0 for f in files)
    if total > settings.MAX_UPLOAD_BYTES:
        messages.error(
            request,
            f"Nothing uploaded: {total:,} bytes exceed the limit of {settings.MAX_UPLOAD_BYTES:,} bytes per upload; "
            "upload in parts or use manage.py import_images.",
        )
        return back
    try:
        received = receive_uploads(project, request.user, files)
    except QueueUnavailable:
        messages.error(request, "Nothing uploaded: the ingest queue is unavailable; try again later.")
        return back
    if received.job is not None:
        job = received.job
        messages.success(
            request, f"Upload {job.pk} queued: {job.files} files are ingested in the background (see Uploads)."
        )
        return back
    results = received.results or []
    counts = summarise(results)
    text = (
        f"{len(results)} file{'s' if len(results) != 1 else ''}: {counts['ingested']} added, "
        f"{counts['duplicate']} already in the project, {counts['rejected']} refused."
    )
    (messages.warning if counts["rejected"] else messages.success)(request, text)
    refused = [r for r in results if r.status == REJECTED]
    for r in refused[:SHOWN_REFUSALS]:
        messages.warning(request, r.reason if r.reason.startswith(f"{r.name}: ") else f"{r.name}: {r.reason}")
    if len(refused) > SHOWN_REFUSALS:
        messages.warning(request, f"... and {len(refused) - SHOWN_REFUSALS} more refused.")
    return back


def _why_queue_is_empty(project: Project) -> str:
    images = project.images.exclude(status="failed")
    if not images.exists():
        return "No images to label yet: add images to the project first."
    if not loop.unlabelled(images).exists():
        return "Every image in this project is labelled."
    return QUEUE_EMPTY


@login_required
@require_POST
def label_next(request: HttpRequest, project_id: int) -> HttpResponse:
    """The next image of the active-learning queue, handed to you alone (``loop.claim_next``), in
    the viewer in queue mode: its Next asks the queue again instead of walking the worklist."""
    project = _project_for(request, project_id, Role.ANNOTATOR)
    image = loop.claim_next(project, request.user)
    if image is None:
        messages.info(request, _why_queue_is_empty(project))
        return redirect("pages:worklist", project.pk)
    return redirect(reverse("pages:viewer", args=[project.pk, image.pk]) + "?queue=1")


@login_required
@require_POST
def retrain(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lead_project(request, project_id)
    if loop.retrain_on_demand(project, request.user):
        if loop.labelled_images(project).exists():
            messages.success(
                request, "Training round queued: the worklist reorders when it finishes.", extra_tags=AT_LEARNING
            )
        else:
            messages.success(
                request,
                "No labelled images yet, so there are no heads to train: the worklist is being ordered "
                "to start with typical images of each body part. Rounds appear here once images are labelled.",
                extra_tags=AT_LEARNING,
            )
    else:
        messages.info(request, "A training round is already queued or running.", extra_tags=AT_LEARNING)
    return redirect(reverse("pages:project-detail", args=[project.pk]) + "#learning")


@login_required
@require_POST
def ranking(request: HttpRequest, project_id: int) -> HttpResponse:
    """A lead chooses how training rounds order the labelling queue (``settings["sampling"]``) and,
    optionally, one finding to rank for first (``settings["focus"]``, '' = every finding); audited
    as the API's settings change; a round is queued so the new order shows at once."""
    project = _lead_project(request, project_id)
    back = redirect(reverse("pages:project-detail", args=[project.pk]) + "#learning")
    choice = request.POST.get("sampling", "")
    focus = request.POST.get("focus", project.setting("focus"))
    findings = head_names(project.label_schema)
    if choice not in SAMPLING:
        messages.error(
            request, f"Not changed: the ranking must be one of {', '.join(SAMPLING)}.", extra_tags=AT_LEARNING
        )
        return back
    if focus and focus not in findings:
        messages.error(
            request,
            f"Not changed: {focus!r} is not a finding of this project ({', '.join(findings)}).",
            extra_tags=AT_LEARNING,
        )
        return back
    said = choice
    if focus:
        said = f"{choice}, for {focus} first"
    elif project.setting("focus"):
        said = f"{choice}, for every finding"
    if not projects.set_settings(actor=request.user, project=project, values={"sampling": choice, "focus": focus}):
        messages.info(request, f"The queue is already ranked by {said}.", extra_tags=AT_LEARNING)
        return back
    name = request.user.get_username()
    if loop.request_retrain(project, reason=f"ranking changed to {said} by {name}"):
        messages.success(
            request, f"Ranking set to {said}; a training round is queued to reorder the queue.", extra_tags=AT_LEARNING
        )
    else:
        messages.success(
            request,
            f"Ranking set to {said}; the round already queued or running will use it.",
            extra_tags=AT_LEARNING,
        )
    return back


@login_required
@require_POST
def compare_rankings(request: HttpRequest, project_id: int) -> HttpResponse:
    """Leads ask which ranking would have saved labels on the project's own labels: the oracle
    simulation runs on the train queue (``workers.learning.compare_rankings``); nothing changes."""
    project = _lead_project(request, project_id)
    back = redirect(reverse("pages:project-detail", args=[project.pk]) + "#learning")
    labelled = loop.learnable_images(project).count()
    if labelled < COMPARE_MIN_LABELLED:
        messages.error(
            request,
            f"Not compared: this needs {COMPARE_MIN_LABELLED} analysed, labelled images; the project has {labelled}.",
            extra_tags=AT_LEARNING,
        )
        return back
    if compare_on_demand(project, request.user):
        messages.success(
            request,
            "Comparison queued: each ranking replays the labelling of this project's labelled images; "
            "the result appears here in a few minutes.",
            extra_tags=AT_LEARNING,
        )
    else:
        messages.info(request, "A comparison is already queued or running.", extra_tags=AT_LEARNING)
    return back


@login_required
@require_POST
def reanalyse(request: HttpRequest, project_id: int) -> HttpResponse:
    """A lead has the images analysed with earlier settings (or another backbone) analysed again,
    as ``manage.py reanalyse --project`` does; their labels are kept."""
    project = _lead_project(request, project_id)
    queued = reanalyse_outdated(project, actor=request.user)
    if queued:
        messages.success(
            request,
            f"{queued} image{pluralize(queued)} queued for analysis with the current settings.",
            extra_tags=AT_LEARNING,
        )
    else:
        messages.info(request, "Every analysed image is up to date: nothing to analyse again.", extra_tags=AT_LEARNING)
    return redirect(reverse("pages:project-detail", args=[project.pk]) + "#learning")


@login_required
@require_POST
def export(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _lead_project(request, project_id)
    fmt = request.POST.get("format", ExportFormat.COCO)
    images = request.POST.get("images", ImageMode.PNG16)
    filters = {k: True for k in ("reviewed_only", "include_unlabelled") if request.POST.get(k) == "on"}
    # Checked before a version is made: a refused format must not leave a version behind.
    if fmt not in ExportFormat.values or images not in ImageMode.values:
        bad = f"format {fmt!r}" if fmt not in ExportFormat.values else f"image mode {images!r}"
        messages.error(request, f"Export not started: unknown {bad}.")
        return redirect("pages:project-detail", project.pk)
    chosen = request.POST.get("version", "")
    seed = request.POST.get("split_seed", "").strip() or "0"
    # For a new version, as the API takes it: int() took "-1", "abc" said "invalid literal for
    # int()", and a seed past 64 bits was a 500 on saving the version.
    if not chosen and not (len(seed) <= 10 and seed.isdecimal() and int(seed) <= SPLIT_SEED_MAX):
        messages.error(
            request, f"Export not started: the split seed must be a whole number from 0 to {SPLIT_SEED_MAX:,}."
        )
        return redirect("pages:project-detail", project.pk)
    try:
        if chosen:
            # An existing version rendered again (another format or image mode): the same images,
            # labels and splits as its first export.
            version = DatasetVersion.objects.filter(project=project, pk=int(chosen) if chosen.isdigit() else -1).first()
            if version is None:
                messages.error(request, "Export not started: that dataset version is not in this project.")
                return redirect("pages:project-detail", project.pk)
        else:
            version = exports.create_version(
                project=project,
                actor=request.user,
                name=request.POST.get("name", "")[:200],
                filters=filters,
                split_seed=int(seed),
            )
        job = exports.start_export(
            version=version, actor=request.user, fmt=fmt, images=images, embeddings="embeddings" in request.POST
        )
    except (exports.InvalidFilters, ValueError) as exc:
        messages.error(request, f"Export not started: {exc}")
    else:
        messages.success(request, f"Export {job.pk} of dataset version {version.number} queued ({fmt}).")
    return redirect("pages:project-detail", project.pk)


def _refusal(exc: ValidationError) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        detail = next(iter(detail.values()), "")
    if isinstance(detail, list):
        detail = detail[0] if detail else ""
    return str(detail)


@login_required
@require_POST
def members(request: HttpRequest, project_id: int) -> HttpResponse:
    """Leads add an existing account by user name, change a member's role, or remove a member
    (``op`` = add | role | remove); audited by the same services as the API. A project keeps at
    least one lead."""
    project = _lead_project(request, project_id)
    back = redirect(reverse("pages:project-detail", args=[project.pk]) + "#members")
    op = request.POST.get("op", "")
    role = request.POST.get("role", "")
    if op in ("add", "role") and role not in Role.values:
        messages.error(
            request, f"Not changed: the role must be one of {', '.join(Role.values)}.", extra_tags=AT_MEMBERS
        )
        return back
    try:
        if op == "add":
            username = request.POST.get("username", "").strip()
            user = get_user_model().objects.filter(username=username).first() if username else None
            if user is None:
                messages.error(
                    request,
                    f"No account named {username!r}: add people who already have an account here "
                    "(an administrator creates accounts)."
                    if username
                    else "Nothing added: type the user name of an existing account.",
                    extra_tags=AT_MEMBERS,
                )
                return back
            existing = project.memberships.filter(user=user).first()
            if existing is not None:
                messages.info(
                    request,
                    f"{username} is already a member ({existing.role}); change the role below.",
                    extra_tags=AT_MEMBERS,
                )
                return back
            projects.set_membership(actor=request.user, project=project, user=user, role=role)
            messages.success(request, f"{username} added as {role}.", extra_tags=AT_MEMBERS)
            return back
        try:
            membership = project.memberships.select_related("user").get(pk=int(request.POST.get("membership", "")))
        except (ValueError, Membership.DoesNotExist):
            messages.error(
                request, "Not changed: that member is not in this project (any more).", extra_tags=AT_MEMBERS
            )
            return back
        name = membership.user.get_username()
        if op == "role":
            projects.set_membership(actor=request.user, project=project, user=membership.user, role=role)
            messages.success(request, f"{name} is now {role}.", extra_tags=AT_MEMBERS)
        elif op == "remove":
            projects.remove_membership(actor=request.user, membership=membership)
            if membership.user == request.user:  # you no longer see the project: said on the list
                messages.success(request, f"You left {project.name!r}.")
                return redirect("pages:project-list")
            messages.success(request, f"{name} removed from the project.", extra_tags=AT_MEMBERS)
        else:
            messages.error(request, "Not changed: unknown member action.", extra_tags=AT_MEMBERS)
    except ValidationError as exc:
        messages.error(request, f"Not changed: {_refusal(exc)}.", extra_tags=AT_MEMBERS)
    return back


@login_required
@require_POST
def delete(request: HttpRequest, project_id: int) -> HttpResponse:
    """A lead deletes the project, having typed its slug (``confirm``) to say they mean this one:
    ``projects.delete_project`` removes its rows, audit trail and stored files and records the
    deletion for staff. A missing or wrong slug deletes nothing."""
    project = _lead_project(request, project_id)
    typed = request.POST.get("confirm", "").strip()
    if typed != project.slug:
        messages.error(
            request,
            f"Not deleted: {typed!r} is not this project's slug; type {project.slug} to confirm."
            if typed
            else f"Not deleted: type the project's slug, {project.slug}, to confirm.",
            extra_tags=AT_DELETE,
        )
        return redirect(reverse("pages:project-detail", args=[project.pk]) + "#delete")
    name = project.name
    images = projects.delete_project(actor=request.user, project=project)["images"]
    messages.success(request, f"Deleted project {name!r} ({images} image{pluralize(images)}).")
    return redirect("pages:project-list")


@login_required
@require_POST
def create(request: HttpRequest) -> HttpResponse:
    """Any signed-in user starts a project and becomes its lead (as ``POST /api/projects/``)."""
    name = request.POST.get("name", "").strip()[:200]
    if not name:
        messages.error(request, "No project created: give it a name.")
        return redirect("pages:project-list")
    project = projects.create_project(
        actor=request.user, name=name, description=request.POST.get("description", "").strip()[:500]
    )
    messages.success(request, f"Project {project.name!r} created (slug {project.slug}); you are its lead.")
    return redirect("pages:project-detail", project.pk)


@login_required
@require_POST
def delete_image(request: HttpRequest, project_id: int, image_id: int) -> HttpResponse:
    """The viewer's **Delete this image** (leads): a wrong upload, or a film with a patient's name in
    its pixels. The API's delete (``studies.services.delete_image``: labels, suggestions, analyses,
    files; audited), then the worklist with a message."""
    project = _lead_project(request, project_id)
    image = get_object_or_404(Image, pk=image_id, project=project)
    name = image.name or f"#{image.pk}"
    labels = studies.delete_image(actor=request.user, image=image)["annotations"]
    messages.success(request, f"Deleted image {name} and its {labels} label{pluralize(labels)}.")
    return redirect("pages:worklist", project.pk)
