"""factory_boy factories for the data model."""

from __future__ import annotations

import hashlib

import factory
from django.contrib.auth import get_user_model

from skelex_web.labeling.models import Annotation, Suggestion
from skelex_web.learning.models import ModelVersion
from skelex_web.projects.models import Membership, Project
from skelex_web.projects.schema import default_schema
from skelex_web.studies.models import Image, Study


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    slug = factory.Sequence(lambda n: f"project-{n}")
    label_schema = factory.LazyFunction(default_schema)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    project = factory.SubFactory(ProjectFactory)
    role = "annotator"


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    project = factory.SubFactory(ProjectFactory)
    patient_pseudo_id = factory.Sequence(lambda n: f"P{n:05d}")


class ImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Image

    project = factory.SubFactory(ProjectFactory)
    study = None
    file = factory.django.FileField(filename="image.png", data=b"not-a-real-png")
    name = factory.Sequence(lambda n: f"image-{n}.png")
    file_format = "png"
    sha256 = factory.Sequence(lambda n: hashlib.sha256(f"file{n}".encode()).hexdigest())
    pixel_sha256 = factory.Sequence(lambda n: hashlib.sha256(f"pixels{n}".encode()).hexdigest())
    rows = 400
    cols = 300
    bits = 16
    status = "analysed"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    kind = "backbone"
    name = factory.Sequence(lambda n: f"backbone-{n}")


class SuggestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suggestion

    image = factory.SubFactory(ImageFactory)
    project = factory.LazyAttribute(lambda o: o.image.project)
    kind = "box"
    label = "fracture"
    x0, y0, x1, y1 = 10.0, 20.0, 60.0, 90.0
    score = 0.8
    rank = factory.Sequence(lambda n: n % 30000)
    model_version = factory.SubFactory(ModelVersionFactory)


class AnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Annotation

    image = factory.SubFactory(ImageFactory)
    project = factory.LazyAttribute(lambda o: o.image.project)
    kind = "box"
    label = "fracture"
    x0, y0, x1, y1 = 5.0, 5.0, 50.0, 50.0
    origin = "manual"
