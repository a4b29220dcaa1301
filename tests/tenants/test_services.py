import pytest
from django.core.exceptions import ValidationError

from tenants.services import tenant_create

pytestmark = pytest.mark.django_db


def test_slug_is_derived_from_the_name():
    tenant = tenant_create(id="demo-tenant", name="Demo Tenant")

    assert tenant.slug == "demo-tenant"


def test_slug_clash_names_the_slug_and_writes_nothing():
    tenant_create(id="one", name="Same Name")

    with pytest.raises(ValidationError) as excinfo:
        tenant_create(id="two", name="Same Name")

    assert "slug" in excinfo.value.message_dict
    from tenants.models import Tenant

    assert list(Tenant.objects.values_list("id", flat=True)) == ["one"]


@pytest.mark.parametrize("bad_id", ["", "UPPER", "-leading-dash", "has space", "x" * 64])
def test_tenant_id_must_match_the_pattern(bad_id):
    with pytest.raises(ValidationError) as excinfo:
        tenant_create(id=bad_id, name="Whatever")

    assert "id" in excinfo.value.message_dict


def test_name_without_slug_material_needs_an_explicit_slug():
    with pytest.raises(ValidationError) as excinfo:
        tenant_create(id="emoji", name="🚀🚀")

    assert excinfo.value.message_dict == {"slug": ["Could not derive a slug from the name; give one."]}
    assert tenant_create(id="emoji", name="🚀🚀", slug="rocket").slug == "rocket"
