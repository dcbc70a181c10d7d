"""The sandbox's adjustable behaviour: faults, durations, outcomes, limits (control API)."""

import copy

DATASET_STAGES = ("Queued", "Fetching", "Mapping", "Validating", "Processing")

# Where each error outcome ends a dataset: after which stage it is decided.
ERROR_DECIDED_AFTER = {
    "FetchError": "Fetching",
    "AuthError": "Fetching",
    "NotSupported": "Fetching",
    "RateLimitError": "Fetching",
    "PermissionsError": "Fetching",
    "PrerequisiteNotMet": "Fetching",
    "Cancelled": "Fetching",
    "InternalError": "Fetching",
    "MapError": "Mapping",
    "ValidationError": "Validating",
    "ProcessingError": "Processing",
}

DEFAULTS = {
    "speed": 1.0,
    "faults": {
        "errorRate": 0.0,
        "errorStatus": 500,
        "latencyMs": 0,
        "duplicateWebhooks": False,
        "outOfOrderWebhooks": False,
    },
    "datasets": {
        # Sandbox seconds spent in each stage.
        "durations": {"Queued": 2, "Fetching": 30, "Mapping": 10, "Validating": 5, "Processing": 5},
        # dataType -> final status, for every company (a company's own outcomes win).
        "outcomes": {},
        "recordsModified": True,
    },
    "push": {"delaySeconds": 30, "outcome": "Success"},
    # Codat's Free plan: at most 50 companies, and no hourly sync schedule (402 either way).
    "account": {"plan": "Paid"},
    "rateLimits": {
        # None: Codat's formula, 1000 x (1 + active connected companies).
        "dailyQuota": None,
        "perMinute": 1000,
        "concurrentPerCompany": 10,
    },
}


def defaults(overrides: dict | None = None) -> dict:
    settings = copy.deepcopy(DEFAULTS)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            settings[key].update(value)
        else:
            settings[key] = value
    return settings
