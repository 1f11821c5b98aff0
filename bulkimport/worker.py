"""`python -m bulkimport.worker`: dramatiq's own worker command over bulkimport.actors, tuned for latency.

An idle dramatiq consumer sleeps up to ``dramatiq_worker_timeout`` ms between fetches (1000 by
default), which made an idle worker take half a second on average to pick up a job. 100 ms costs
Redis ten cheap fetches a second per worker process. The setting is read when dramatiq is imported,
so it is set here, first.
"""

import os
import sys

os.environ.setdefault("dramatiq_worker_timeout", "100")

from dramatiq.cli import main  # noqa: E402 - after the setting above

if __name__ == "__main__":
    from bulkimport.config import settings
    from bulkimport.errors import ConfigError

    try:
        settings()  # a bad setting stops here with one clear line, not in every process's import of the actors
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.argv = ["dramatiq", "bulkimport.actors", *sys.argv[1:]]
    sys.exit(main())
