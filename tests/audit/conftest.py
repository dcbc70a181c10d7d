import pytest

from tests.operations.conftest import no_celery, refuse_consent  # noqa: F401


@pytest.fixture
def signed_in(client):
    """Sign a staff member of the given role in on the test client; returns the user."""
    from tests.factories import StaffFactory

    def sign_in(role):
        user = StaffFactory(role=role)
        client.force_login(user)
        return user

    return sign_in
