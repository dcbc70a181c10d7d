"""gunicorn's settings for the portal; `gunicorn portal.wsgi` reads this file from here.

Without it gunicorn starts one sync worker, and one slow admin page would hold up Codat's
webhook deliveries behind it.
"""

import multiprocessing
import os

# gunicorn's own rule of thumb, 2 per core + 1; WEB_CONCURRENCY (gunicorn's variable) sets it.
# Sync workers: bench/webhook_ingest.py gave gthread workers (3 x 4 threads) less throughput
# on both the trivial and the webhook endpoint on 2 cores.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count() + 1)
