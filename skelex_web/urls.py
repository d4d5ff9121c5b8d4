"""URL wiring only: each app owns its routes."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import PasswordChangeDoneView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from skelex_web.signin import AdminSignInForm, PasswordChange, SignInView, TokenView

# Every password entry point counts failed sign-ins (skelex_web/signin.py), the admin's too.
admin.site.login_form = AdminSignInForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", SignInView.as_view(), name="login"),
    # The house pages, not the admin's (django.contrib.admin ships templates of the same names).
    path(
        "accounts/password_change/",
        PasswordChange.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        PasswordChangeDoneView.as_view(template_name="pages/password_change_done.html"),
        name="password_change_done",
    ),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/auth/token/", TokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # A page for people: signed out, it sends you to sign in rather than answering a bare 403.
    path("api/docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("api/", include("skelex_web.projects.urls")),
    path("api/", include("skelex_web.studies.urls")),
    path("api/", include("skelex_web.labeling.urls")),
    path("api/", include("skelex_web.learning.urls")),
    path("api/", include("skelex_web.audit.urls")),
    path("api/", include("skelex_web.exports.urls")),
    path("", include("skelex_web.pages.urls")),
]
