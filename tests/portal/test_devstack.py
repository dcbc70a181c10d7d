"""`make run`'s choices that need no running stack."""

from portal.devstack import default_consent_base_url


def test_consent_links_follow_the_port_make_run_serves_on():
    assert default_consent_base_url({"PORT": "8100"}, 8100) == "http://127.0.0.1:8100"


def test_a_consent_base_url_given_by_the_environment_is_kept():
    environ = {"CONSENT_BASE_URL": "https://portal.example.com"}
    assert default_consent_base_url(environ, 8100) == "https://portal.example.com"


def test_an_empty_consent_base_url_counts_as_not_given():
    assert default_consent_base_url({"CONSENT_BASE_URL": ""}, 8100) == "http://127.0.0.1:8100"
