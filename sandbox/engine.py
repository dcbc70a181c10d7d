"""Time-driven behaviour: dataset progression, reads and their webhooks, product schedules,
client-level and company-level sync schedules, platform downtime retries, push operations,
connection state changes and quota resets.

Every change happens at a sandbox time `at`. Timers fire in time order, and each handler computes
the next step from its own due time (not from "now"), so advancing the clock by 12 hours replays
the same sequence a real 12 hours would have produced.
"""

import asyncio
import heapq
import itertools
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandbox.catalogue import DATA_TYPES_BY_SOURCE_TYPE, STANDARD_PRODUCTS
from sandbox.clock import iso, next_utc_midnight
from sandbox.render import (
    company_connections,
    company_details,
    company_reference,
    connection_body,
)
from sandbox.settings import DATASET_STAGES, ERROR_DECIDED_AFTER

if TYPE_CHECKING:
    from sandbox.runtime import Sandbox

log = logging.getLogger("sandbox.engine")

TERMINAL_OK = "Complete"
PROGRESS = {"Queued": 0, "Fetching": 20, "Mapping": 50, "Validating": 70, "Processing": 90}
# A scheduled read against a platform that is down: 10 retries spread over 12 hours.
DOWNTIME_RETRIES = 10
DOWNTIME_WINDOW_SECONDS = 12 * 3600


# What started a read (its `origin.kind`), as the control API's record of reads shows it.
ORIGIN_LINK = "link"
ORIGIN_CLIENT_SCHEDULE = "clientSchedule"
ORIGIN_COMPANY_SCHEDULE = "companySchedule"
ORIGIN_PRODUCT_SCHEDULE = "productSchedule"
ORIGIN_PRODUCT_ADDED = "productAdded"
ORIGIN_PRODUCT_REFRESH = "productRefresh"
ORIGIN_REFRESH_ALL = "refreshAll"
ORIGIN_REFRESH_DATA_TYPE = "refreshDataType"
# Reads that product-level settings start: they do not move the client-level schedule.
PRODUCT_ORIGINS = {ORIGIN_PRODUCT_SCHEDULE, ORIGIN_PRODUCT_ADDED, ORIGIN_PRODUCT_REFRESH}


def is_terminal(status: str) -> bool:
    return status not in PROGRESS


class Engine:
    def __init__(self, sandbox: "Sandbox"):
        self.sb = sandbox
        self._heap: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        # Indexes over the store, so that a busy sandbox (thousands of companies re-read on
        # schedules) never scans every dataset or read to answer one company: (company, data
        # type) -> ids of its running datasets (one per connection that reads it), company -> its
        # unfinished reads.
        self._running: dict[tuple[str, str], set[str]] = {}
        self._open_reads: dict[str, set[str]] = {}
        self._handlers = {
            "dataset": self._advance_dataset,
            "schedule": self._run_schedule,
            "sync": self._run_sync_schedule,
            "push": self._complete_push,
            "deliver": lambda due, ref: self.sb.dispatcher.on_due(due, ref),
            "quota_reset": lambda due, ref: self.sb.limiter.reset_quota(due),
            "source_account": self._finish_connecting,
        }

    # -- timers ---------------------------------------------------------------------------

    def schedule(self, due: float, kind: str, ref: str) -> None:
        heapq.heappush(self._heap, (due, next(self._seq), kind, ref))

    def run_due(self) -> int:
        """Fire every timer that is due now, in time order. Returns how many fired."""
        fired = 0
        now = self.sb.clock.now()
        if not self._heap or self._heap[0][0] > now:
            return fired
        with self.sb.store.batch():
            while self._heap and self._heap[0][0] <= now:
                due, _, kind, ref = heapq.heappop(self._heap)
                try:
                    self._handlers[kind](due, ref)
                except Exception:
                    log.exception("sandbox.engine.timer_failed", extra={"kind": kind, "ref": ref})
                fired += 1
        return fired

    async def run_forever(self) -> None:
        while True:
            self.run_due()
            await asyncio.sleep(0.01)

    def clear(self) -> None:
        self._heap.clear()
        self._running.clear()
        self._open_reads.clear()

    def rebuild(self) -> None:
        """Recreate timers and indexes from stored state (after a restart or a reset)."""
        self.clear()
        store = self.sb.store
        for dataset in store.all("dataset"):
            if not is_terminal(dataset["status"]):
                key = (dataset["companyId"], dataset["dataType"])
                self._running.setdefault(key, set()).add(dataset["id"])
                if dataset.get("_nextAt") is not None:
                    self.schedule(dataset["_nextAt"], "dataset", dataset["id"])
        for read in store.all("read"):
            if not read["done"]:
                self._open_reads.setdefault(read["companyId"], set()).add(read["id"])
        for company in store.all("company"):
            if company.get("_syncNextAt") is not None:
                self.schedule(company["_syncNextAt"], "sync", company["id"])
        for operation in store.all("push"):
            if operation["status"] == "Pending":
                self.schedule(operation["_dueAt"], "push", operation["pushOperationKey"])
        for message in store.all("message"):
            if message["state"] in ("Pending", "Sending"):
                message["state"] = "Pending"
                self.schedule(message["nextAttemptAt"], "deliver", message["id"])
        for account in store.all("source_account"):
            if account.get("_connectAt") is not None:
                self.schedule(account["_connectAt"], "source_account", account["_key"])
        for product in store.all("product"):
            self.plan_schedule(product, self.sb.clock.now())
        self.schedule(next_utc_midnight(self.sb.clock.now()), "quota_reset", "")

    # -- connections ----------------------------------------------------------------------

    def authorize(self, connection: dict, at: float) -> None:
        """The SMB finished Link: the connection becomes Linked, then the initial read runs."""
        previous = connection["status"]
        if previous == "Linked":
            return
        first_link = not connection.get("_everLinked")
        connection["status"] = "Linked"
        for error in connection.get("dataConnectionErrors") or []:
            if error.get("status") == "Active":
                error["status"] = "Resolved"
                error["resolvedOnUtc"] = iso(at)
        connection["_everLinked"] = True
        self.sb.store.put("connection", connection["id"], connection)
        company = self.sb.store.get("company", connection["_companyId"])
        event = "connection.connected" if first_link else "connection.reconnected"
        self.emit_connection(event, company, connection, at)
        data_types = self.first_link_data_types(company, connection)
        self.start_read(
            company,
            data_types,
            at=at,
            connection=connection,
            initial=True,
            first_ever=first_link,
            products=self.custom_products_of(company),
            origin={"kind": ORIGIN_LINK, "connectionId": connection["id"]},
        )
        # A (re)link starts each type's client-level schedule again from this read.
        anchors = company.setdefault("_scheduleFrom", {})
        anchors.update({data_type: at for data_type in data_types if data_type in anchors})
        self.sb.store.put("company", company["id"], company)
        self.plan_sync(company, at)

    def fail_link(self, connection: dict, at: float) -> None:
        """The SMB cancelled Link: Codat records a 403 and leaves the connection PendingAuth."""
        connection.setdefault("dataConnectionErrors", []).append(
            {
                "statusCode": "403",
                "statusText": "User cancelled linking",
                "errorMessage": "User cancelled linking",
                "erroredOnUtc": iso(at),
                "status": "Active",
            }
        )
        self.sb.store.put("connection", connection["id"], connection)
        company = self.sb.store.get("company", connection["_companyId"])
        self.emit_connection("connection.failed", company, connection, at)

    def disconnect(self, connection: dict, status: str, at: float) -> None:
        """Linked -> Unlinked (the client) or Deauthorized (the SMB or the platform)."""
        connection["status"] = status
        if status == "Deauthorized":
            connection.setdefault("dataConnectionErrors", []).append(
                {
                    "statusCode": "401",
                    "statusText": "Unauthorized",
                    "errorMessage": "The platform rejected the connection's credentials",
                    "erroredOnUtc": iso(at),
                    "status": "Active",
                }
            )
        self.sb.store.put("connection", connection["id"], connection)
        company = self.sb.store.get("company", connection["_companyId"])
        self.emit_connection("connection.disconnected", company, connection, at)

    def emit_connection(self, event_type: str, company: dict, connection: dict, at: float):
        payload = {
            "referenceCompany": company_reference(company),
            "connection": connection_body(connection),
        }
        self.sb.dispatcher.emit(event_type, payload, at=at, company=company)

    def linked_connections(self, company_id: str) -> list[dict]:
        return [
            c for c in company_connections(self.sb.store, company_id) if c["status"] == "Linked"
        ]

    # -- products and sync settings -------------------------------------------------------

    def product(self, identifier: str) -> dict | None:
        standard = STANDARD_PRODUCTS.get(identifier)
        if standard is not None:
            return {"identifier": identifier, "custom": False, **standard}
        return self.sb.store.get("product", identifier)

    def custom_products_of(self, company: dict) -> list[dict]:
        products = [self.sb.store.get("product", p) for p in company.get("products") or []]
        return [p for p in products if p is not None]

    def sync_settings_for(self, company: dict) -> list[dict]:
        own = company.get("_syncSettings")
        if own is not None:
            return own["settings"]
        return self.sb.client_sync_settings()["settings"]

    def first_link_data_types(self, company: dict, connection: dict) -> list[str]:
        wanted = [s["dataType"] for s in self.sync_settings_for(company) if s["fetchOnFirstLink"]]
        for identifier in company.get("products") or []:
            product = self.product(identifier)
            if product:
                wanted += product["dataTypes"]
        supported = DATA_TYPES_BY_SOURCE_TYPE[connection["sourceType"]]
        return [t for t in dict.fromkeys(wanted) if t in supported]

    def product_added(self, company: dict, product: dict, at: float) -> None:
        """Codat assumes consent exists and fetches the new product's data types at once.

        A custom product's read takes in the datasets of its types that are already running
        (for another product, a schedule or the first link), so its
        `{product}.read.completed` still comes, once they have all finished."""
        self.start_read(
            company,
            product["dataTypes"],
            at=at,
            products=[product] if product.get("custom") else [],
            origin={"kind": ORIGIN_PRODUCT_ADDED, "product": product["identifier"]},
        )

    def linked_data_types(self, company_id: str) -> set[str]:
        """The data types some Linked connection of the company can read."""
        return {
            data_type
            for connection in self.linked_connections(company_id)
            for data_type in DATA_TYPES_BY_SOURCE_TYPE[connection["sourceType"]]
        }

    # -- client-level and company-level sync schedules ------------------------------------

    def sync_schedule_hours(self, company: dict) -> dict[str, int]:
        """data type -> syncSchedule hours, for the types with a schedule (0 means none)."""
        return {
            s["dataType"]: s["syncSchedule"]
            for s in self.sync_settings_for(company)
            if s["syncSchedule"] > 0
        }

    def plan_sync(self, company: dict, after: float) -> None:
        """Set the company's next client-level (or company-level) scheduled read.

        Each data type read at least once for the company is read again `syncSchedule` hours
        after its last successful client-level read (link, refresh, or the schedule itself; a
        failed scheduled read counts from its start), on every Linked connection: Codat's
        frequency "re-commences from the time of the last successful sync". A company with no
        Linked connection has no scheduled read until it is linked again."""
        hours = self.sync_schedule_hours(company)
        readable = self.linked_data_types(company["id"])
        anchors = company.get("_scheduleFrom") or {}
        dues = [
            anchor + hours[data_type] * 3600
            for data_type, anchor in anchors.items()
            if data_type in hours and data_type in readable
        ]
        due = max(min(dues), after) if dues else None
        if due == company.get("_syncNextAt"):
            return
        company["_syncNextAt"] = due
        self.sb.store.put("company", company["id"], company)
        if due is not None:
            self.schedule(due, "sync", company["id"])

    def plan_sync_everywhere(self, after: float) -> None:
        """Client-level settings changed: every company's next scheduled read may move."""
        for company in self.sb.store.all("company"):
            self.plan_sync(company, after)

    def _run_sync_schedule(self, due: float, company_id: str) -> None:
        company = self.sb.store.get("company", company_id)
        if company is None or company.get("_syncNextAt") != due:
            return
        company["_syncNextAt"] = None
        self.sb.store.put("company", company_id, company)
        hours = self.sync_schedule_hours(company)
        readable = self.linked_data_types(company_id)
        anchors = company.setdefault("_scheduleFrom", {})
        due_types = [
            data_type
            for data_type, anchor in anchors.items()
            if data_type in hours
            and data_type in readable
            and anchor + hours[data_type] * 3600 <= due
        ]
        if due_types:
            order = {s["dataType"]: s["syncOrder"] for s in self.sync_settings_for(company)}
            due_types.sort(key=lambda data_type: order.get(data_type, 0))
            own_settings = company.get("_syncSettings") is not None
            level = ORIGIN_COMPANY_SCHEDULE if own_settings else ORIGIN_CLIENT_SCHEDULE
            modified_from = min(anchors[data_type] for data_type in due_types)
            for data_type in due_types:
                anchors[data_type] = due
            self.sb.store.put("company", company_id, company)
            self.start_read(
                company,
                due_types,
                at=due,
                scheduled=True,
                modified_from=modified_from,
                origin={"kind": level},
            )
        self.plan_sync(company, due)

    # -- reads and datasets ---------------------------------------------------------------

    def running_dataset(self, company_id: str, data_type: str) -> dict | None:
        running = self._running.get((company_id, data_type))
        for dataset_id in sorted(running or ()):
            dataset = self.sb.store.get("dataset", dataset_id)
            if dataset is not None and not is_terminal(dataset["status"]):
                return dataset
            running.discard(dataset_id)  # deleted with its company, or missed its end
        return None

    def datasets_of(self, company_id: str) -> list[dict]:
        """The company's datasets, oldest first."""
        return sorted(
            self.sb.store.owned_by("dataset", company_id), key=lambda d: d["_requestedAt"]
        )

    def running_product_read(self, company_id: str, identifier: str) -> dict | None:
        """An unfinished read of a custom product for the company, if any."""
        for read_id in self._open_reads.get(company_id, ()):
            read = self.sb.store.get("read", read_id)
            if read is not None and not read["done"] and identifier in read["products"]:
                return read
        return None

    def forget_company(self, company_id: str) -> None:
        """The company was deleted: drop it from the indexes."""
        self._open_reads.pop(company_id, None)
        for key in [key for key in self._running if key[0] == company_id]:
            del self._running[key]

    def start_read(
        self,
        company: dict,
        data_types: list[str],
        *,
        at: float,
        connection: dict | None = None,
        initial: bool = False,
        first_ever: bool = False,
        products: list[dict] | None = None,
        scheduled: bool = False,
        modified_from: float | None = None,
        origin: dict | None = None,
    ) -> tuple[dict | None, list[dict]]:
        """Queue one dataset per data type (on each Linked connection that supports it) as one read.

        A data type already being read is not queued twice. A custom product's read takes in
        that running dataset (its `{product}.read.completed` covers every type it asked for);
        any other read leaves the type out and records the collision. When every dataset of the
        read has finished, read.completed (and its variants) is sent. Returns the read (None if
        it has nothing to wait for) and the datasets it queued.
        """
        connections = [connection] if connection else self.linked_connections(company["id"])
        custom = [p["identifier"] for p in products or [] if p.get("custom")]
        read_id = str(uuid.uuid4())
        datasets, joined, collisions = [], [], []
        for data_type in dict.fromkeys(data_types):
            running = self.running_dataset(company["id"], data_type)
            if running is not None:
                if custom:
                    joined.append(running)
                else:
                    collisions.append({"dataType": data_type, "datasetId": running["id"]})
                continue
            for conn in connections:
                if data_type in DATA_TYPES_BY_SOURCE_TYPE[conn["sourceType"]]:
                    datasets.append(
                        self.create_dataset(
                            company,
                            conn,
                            data_type,
                            at,
                            read_id,
                            scheduled,
                            client_level=(origin or {}).get("kind") not in PRODUCT_ORIGINS,
                        )
                    )
        for dataset in joined:
            dataset["_readIds"] = [*self._reads_of(dataset), read_id]
            self.sb.store.put("dataset", dataset["id"], dataset)
        if not datasets and not joined:
            if collisions:
                self._record_collision(company, at, origin, custom, collisions)
            return None, []
        read = {
            "id": read_id,
            "companyId": company["id"],
            "datasetIds": [d["id"] for d in [*datasets, *joined]],
            "joinedDatasetIds": [d["id"] for d in joined],
            "collisions": collisions,
            "initial": initial,
            "firstEver": first_ever,
            "products": custom,
            "modifiedFrom": modified_from,
            "origin": origin or {},
            "startedAt": at,
            "done": False,
        }
        self.sb.store.put("read", read_id, read)
        self._open_reads.setdefault(company["id"], set()).add(read_id)
        return read, datasets

    def _record_collision(self, company, at, origin, products, collisions) -> None:
        """A read that found every type it wanted already running: kept in the record of reads
        (as done, with nothing queued) so that a schedule's "in progress" collisions show."""
        read_id = str(uuid.uuid4())
        self.sb.store.put(
            "read",
            read_id,
            {
                "id": read_id,
                "companyId": company["id"],
                "datasetIds": [],
                "joinedDatasetIds": [],
                "collisions": collisions,
                "initial": False,
                "firstEver": False,
                "products": products,
                "modifiedFrom": None,
                "origin": origin or {},
                "startedAt": at,
                "completedAt": at,
                "done": True,
            },
        )

    @staticmethod
    def _reads_of(dataset: dict) -> list[str]:
        if "_readIds" in dataset:
            return list(dataset["_readIds"])
        return [dataset["_readId"]] if dataset.get("_readId") else []

    def create_dataset(
        self,
        company: dict,
        connection: dict,
        data_type: str,
        at: float,
        read_id: str | None,
        scheduled: bool = False,
        *,
        client_level: bool = True,
    ) -> dict:
        durations = self.sb.settings["datasets"]["durations"]
        dataset = {
            "id": str(uuid.uuid4()),
            "companyId": company["id"],
            "connectionId": connection["id"],
            "dataType": data_type,
            "status": "Queued",
            "requested": iso(at),
            "progress": 0,
            "isCompleted": False,
            "isErrored": False,
            "_requestedAt": at,
            "_readId": read_id,
            "_scheduled": scheduled,
            "_clientLevel": client_level,
            "_retries": 0,
            "_nextAt": at + float(durations.get("Queued", 0)),
        }
        self.sb.store.put("dataset", dataset["id"], dataset)
        self.schedule(dataset["_nextAt"], "dataset", dataset["id"])
        self._running.setdefault((company["id"], data_type), set()).add(dataset["id"])
        anchors = company.setdefault("_scheduleFrom", {})
        if data_type not in anchors:
            # A type's client-level schedule counts from its first read for the company.
            anchors[data_type] = at
            self.sb.store.put("company", company["id"], company)
            self.plan_sync(company, at)
        return dataset

    def _outcome_for(self, dataset: dict) -> str:
        company = self.sb.store.get("company", dataset["companyId"]) or {}
        own = company.get("_datasetOutcomes") or {}
        shared = self.sb.settings["datasets"]["outcomes"]
        return own.get(dataset["dataType"]) or shared.get(dataset["dataType"]) or TERMINAL_OK

    def _advance_dataset(self, due: float, dataset_id: str) -> None:
        dataset = self.sb.store.get("dataset", dataset_id)
        if dataset is None or is_terminal(dataset["status"]) or dataset.get("_nextAt") != due:
            return
        stage = dataset["status"]
        outcome = self._outcome_for(dataset)
        if stage == "Fetching":
            connection = self.sb.store.get("connection", dataset["connectionId"])
            company = self.sb.store.get("company", dataset["companyId"]) or {}
            if connection is None:
                return self._finish(dataset, "Cancelled", due, "The connection was deleted")
            if connection["status"] != "Linked":
                return self._finish(
                    dataset, "AuthError", due, "The connection is not authorized; relink it"
                )
            if company.get("_platformDown"):
                return self._platform_down(dataset, due)
        if outcome != TERMINAL_OK and ERROR_DECIDED_AFTER.get(outcome) == stage:
            return self._finish(dataset, outcome, due, f"Sandbox outcome set to {outcome}")
        next_index = DATASET_STAGES.index(stage) + 1
        if next_index == len(DATASET_STAGES):
            return self._finish(dataset, TERMINAL_OK, due)
        next_stage = DATASET_STAGES[next_index]
        duration = float(self.sb.settings["datasets"]["durations"].get(next_stage, 0))
        dataset.update(
            status=next_stage,
            progress=PROGRESS[next_stage],
            statusDescription=None,
            _nextAt=due + duration,
        )
        self.sb.store.put("dataset", dataset_id, dataset)
        self.schedule(dataset["_nextAt"], "dataset", dataset_id)

    def _platform_down(self, dataset: dict, due: float) -> None:
        """Scheduled reads retry 10 times over 12 hours, then end in FetchError."""
        if not dataset.get("_scheduled") or dataset["_retries"] >= DOWNTIME_RETRIES:
            return self._finish(
                dataset, "FetchError", due, "The platform is unavailable (platform downtime)"
            )
        dataset["_retries"] += 1
        retry_at = due + DOWNTIME_WINDOW_SECONDS / DOWNTIME_RETRIES
        dataset["statusDescription"] = f"Paused until {iso(retry_at)}"
        dataset["_nextAt"] = retry_at
        self.sb.store.put("dataset", dataset["id"], dataset)
        self.schedule(retry_at, "dataset", dataset["id"])

    def _finish(self, dataset: dict, status: str, at: float, error: str | None = None) -> None:
        dataset.update(
            status=status,
            completed=iso(at),
            progress=100,
            isCompleted=True,
            isErrored=status != TERMINAL_OK,
            errorMessage=error,
            statusDescription=None,
            _nextAt=None,
        )
        self.sb.store.put("dataset", dataset["id"], dataset)
        if status == TERMINAL_OK:
            for kind, key in (
                ("company", dataset["companyId"]),
                ("connection", dataset["connectionId"]),
            ):
                record = self.sb.store.get(kind, key)
                if record is not None:
                    record["lastSync"] = iso(at)
                    self.sb.store.put(kind, key, record)
            company = self.sb.store.get("company", dataset["companyId"])
            if company is not None and dataset.get("_clientLevel", True):
                # Codat: the configured frequency re-commences from the last successful sync.
                # Reads that product-level settings start keep to their own schedule.
                company.setdefault("_scheduleFrom", {})[dataset["dataType"]] = at
                self.sb.store.put("company", company["id"], company)
                self.plan_sync(company, at)
        self._running.get((dataset["companyId"], dataset["dataType"]), set()).discard(dataset["id"])
        for read_id in self._reads_of(dataset):
            read = self.sb.store.get("read", read_id)
            if read is not None and not read["done"]:
                datasets = [self.sb.store.get("dataset", d) for d in read["datasetIds"]]
                if all(d is None or is_terminal(d["status"]) for d in datasets):
                    self._complete_read(read, [d for d in datasets if d is not None], at)

    def _complete_read(self, read: dict, datasets: list[dict], at: float) -> None:
        read["done"] = True
        read["completedAt"] = at
        self.sb.store.put("read", read["id"], read)
        self._open_reads.get(read["companyId"], set()).discard(read["id"])
        company = self.sb.store.get("company", read["companyId"])
        if company is None:
            return
        records_modified = self.sb.settings["datasets"]["recordsModified"]

        def summary(dataset: dict) -> dict:
            ok = dataset["status"] == TERMINAL_OK
            item = {
                "connectionId": dataset["connectionId"],
                "dataType": dataset["dataType"],
                # The first read after a connection's first link never reports modified records.
                "recordsModified": bool(ok and records_modified and not read["firstEver"]),
                "status": dataset["status"],
            }
            if not ok:
                item["issues"] = [
                    {
                        "type": "error." + dataset["status"][0].lower() + dataset["status"][1:],
                        "message": dataset.get("errorMessage") or dataset["status"],
                        "links": {
                            "portal": f"https://app.codat.io/companies/{company['id']}/data-history",
                            "readMore": "https://docs.codat.io/core-concepts/status",
                        },
                    }
                ]
            return item

        def payload(items: list[dict]) -> dict:
            body = {"referenceCompany": company_reference(company), "dataTypes": items}
            if read.get("modifiedFrom") is not None:
                body["modifiedFromDate"] = iso(read["modifiedFrom"])
            return body

        items = [summary(d) for d in datasets]
        emit = self.sb.dispatcher.emit
        successful = all(i["status"] == TERMINAL_OK for i in items)
        emit("read.completed", payload(items), at=at, company=company)
        # The generic sub-events, for consumers subscribed to them (Codat's docs name them
        # beside read.completed; the OAS has no webhooks entry for them).
        outcome = "successful" if successful else "unsuccessful"
        emit(f"read.completed.{outcome}", payload(items), at=at, company=company)
        if read["initial"]:
            emit("read.completed.initial", payload(items), at=at, company=company)
            if successful:
                emit("read.completed.successful.initial", payload(items), at=at, company=company)
        for identifier in read.get("products") or []:
            product = self.sb.store.get("product", identifier)
            if product is None:
                continue
            own = [i for i in items if i["dataType"] in product["dataTypes"]]
            if not own:
                continue
            outcome = (
                "successful" if all(i["status"] == TERMINAL_OK for i in own) else "unsuccessful"
            )
            emit(f"{identifier}.read.completed", payload(own), at=at, company=company)
            emit(f"{identifier}.read.completed.{outcome}", payload(own), at=at, company=company)
            if read["initial"]:
                emit(f"{identifier}.read.completed.initial", payload(own), at=at, company=company)

    # -- custom product schedules ---------------------------------------------------------

    @staticmethod
    def next_run(product: dict, after: float) -> float | None:
        schedule = product.get("schedule") or {}
        frequency = schedule.get("frequency")
        if frequency == "hourly":
            return (int(after) // 3600 + 1) * 3600
        if frequency == "daily":
            hour, minute = (int(part) for part in schedule.get("time", "00:00").split(":"))
            moment = datetime.fromtimestamp(after, UTC)
            candidate = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
            if candidate.timestamp() <= after:
                candidate += timedelta(days=1)
            return candidate.timestamp()
        return None

    @staticmethod
    def previous_run(product: dict, run_at: float) -> float:
        frequency = (product.get("schedule") or {}).get("frequency")
        return run_at - (3600 if frequency == "hourly" else 86400)

    def plan_schedule(self, product: dict, after: float) -> None:
        run_at = self.next_run(product, after)
        product["_nextRunAt"] = run_at
        self.sb.store.put("product", product["identifier"], product)
        if run_at is not None:
            self.schedule(run_at, "schedule", product["identifier"])

    def _run_schedule(self, due: float, identifier: str) -> None:
        product = self.sb.store.get("product", identifier)
        if product is None or product.get("_nextRunAt") != due:
            return
        # modifiedFromDate is the product's previous scheduled read.
        modified_from = product.get("_lastRunAt") or self.previous_run(product, due)
        for company in self.sb.store.all("company"):
            if identifier in (company.get("products") or []):
                self.start_read(
                    company,
                    product["dataTypes"],
                    at=due,
                    products=[product],
                    scheduled=True,
                    modified_from=modified_from,
                    origin={"kind": ORIGIN_PRODUCT_SCHEDULE, "product": identifier},
                )
        product["_lastRunAt"] = due
        self.plan_schedule(product, due)

    # -- push operations ------------------------------------------------------------------

    def create_push(
        self,
        company: dict,
        connection: dict,
        data_type: str,
        data: dict,
        *,
        at: float,
        timeout_minutes: int | None,
        record_ids: list[str],
        valid: bool,
    ) -> dict:
        settings = self.sb.settings["push"]
        due = at + float(settings["delaySeconds"])
        outcome = settings["outcome"] if valid else "Failed"
        if timeout_minutes is not None and timeout_minutes * 60 < due - at:
            due, outcome = at + timeout_minutes * 60, "TimedOut"
        operation = {
            "pushOperationKey": str(uuid.uuid4()),
            "companyId": company["id"],
            "dataConnectionKey": connection["id"],
            "dataType": data_type,
            "requestedOnUtc": iso(at),
            "timeoutInMinutes": timeout_minutes,
            "status": "Pending",
            "statusCode": 202,
            "changes": [],
            "validation": {"errors": [], "warnings": []},
            "data": data,
            "_dueAt": due,
            "_outcome": outcome,
            "_recordIds": record_ids,
        }
        self.sb.store.put("push", operation["pushOperationKey"], operation)
        self.schedule(due, "push", operation["pushOperationKey"])
        return operation

    def _complete_push(self, due: float, key: str) -> None:
        operation = self.sb.store.get("push", key)
        if operation is None or operation["status"] != "Pending" or operation["_dueAt"] != due:
            return
        outcome = operation["_outcome"]
        operation["status"] = outcome
        operation["completedOnUtc"] = iso(due)
        if outcome == "Success":
            operation["statusCode"] = 200
            operation["changes"] = [
                {"type": "Created", "recordRef": {"id": rid, "dataType": operation["dataType"]}}
                for rid in operation["_recordIds"]
            ]
        elif outcome == "Failed":
            operation["statusCode"] = 400
            operation["errorMessage"] = "The write was rejected by the platform"
            operation["validation"]["errors"] = operation.get("_validationErrors") or [
                {
                    "itemId": operation["data"].get("accountId") if operation["data"] else None,
                    "message": "The sandbox was set to fail this write",
                    "validatorName": "SandboxOutcome",
                }
            ]
        else:
            operation["statusCode"] = 504
            operation["errorMessage"] = "The push operation timed out"
        self.sb.store.put("push", key, operation)
        company = self.sb.store.get("company", operation["companyId"])
        if company is None:
            return
        status = "successful" if outcome == "Success" else "unsuccessful"
        payload = {
            "id": key,
            "type": "Create",
            "referenceCompany": company_reference(company),
            "connectionId": operation["dataConnectionKey"],
            "requestedOnDate": operation["requestedOnUtc"],
            "completedOnDate": operation["completedOnUtc"],
            "status": outcome,
        }
        if operation["_recordIds"]:
            payload["record"] = {"id": operation["_recordIds"][0]}
        self.sb.dispatcher.emit(
            f"{operation['dataType']}.write.{status}", payload, at=due, company=company
        )

    # -- bank feeds -----------------------------------------------------------------------

    def _finish_connecting(self, due: float, key: str) -> None:
        account = self.sb.store.get("source_account", key)
        if account is None or account.get("_connectAt") != due:
            return
        account["status"] = "connected"
        account["_connectAt"] = None
        self.sb.store.put("source_account", key, account)
        self.sb.bank_feed_event("bankFeeds.sourceAccount.connected", account, due)


def company_created_payload(company: dict) -> dict:
    return company_details(company)
