"""The installer applies crdgen's CRD objects as they are: the same CRDs as the committed YAML files."""

from __future__ import annotations

from graylane.api import crdgen
from graylane.webhook import install


def test_the_default_crds_equal_the_rendered_files() -> None:
    assert install._crds(None) == install.crd_objects(crdgen.render_all())


def test_given_files_are_read_as_yaml() -> None:
    one = {"x.yaml": "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"}
    assert install._crds(one) == [
        {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}
    ]
