import pytest
import requests

from codat import CodatClient
from tests.codat.fake_codat import FakeCodat

API_KEY = "sk_test_4f2d9c"


@pytest.fixture
def fake_codat():
    fake = FakeCodat().start()
    yield fake
    fake.stop()


class RecordingSession(requests.Session):
    """A plain Session that remembers the keyword arguments and prepared request of each call."""

    def __init__(self) -> None:
        super().__init__()
        # Proxies from the environment must not divert calls to 127.0.0.1.
        self.trust_env = False
        self.calls: list[dict] = []
        self.sent: list[requests.PreparedRequest] = []
        self.hooks["response"].append(self._record_sent)

    def request(self, method, url, **kwargs):
        self.calls.append({"method": method, "url": url, **kwargs})
        return super().request(method, url, **kwargs)

    def _record_sent(self, response, *args, **kwargs):
        self.sent.append(response.request)


@pytest.fixture
def session():
    with RecordingSession() as recording:
        yield recording


@pytest.fixture
def client(fake_codat, session):
    return CodatClient(fake_codat.base_url, API_KEY, timeout=(2.0, 5.0), session=session)
