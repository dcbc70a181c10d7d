import io
import json

from core.csv_export import SafeCsvWriter

CSV_HEADER = (
    "at",
    "actor",
    "via",
    "api_key",
    "ip",
    "action",
    "target_type",
    "target_id",
    "target",
    "changes",
)


def audit_entries_csv_lines(entries):
    """The entries as CSV lines, one at a time (the trail can be long); every cell spreadsheet
    safe, since targets and changes carry names that customers and Codat chose."""
    buffer = io.StringIO()
    writer = SafeCsvWriter(buffer)

    def flushed():
        line = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return line

    writer.writerow(CSV_HEADER)
    yield flushed()
    for entry in entries.iterator(chunk_size=2000):
        writer.writerow(
            (
                entry.at.isoformat(),
                entry.actor,
                entry.via,
                entry.api_key,
                entry.ip or "",
                entry.action,
                entry.target_type,
                entry.target_id,
                entry.target,
                json.dumps(entry.changes, sort_keys=True),
            )
        )
        yield flushed()
