"""Validation worker process: `python -m validation.worker FD CONFIG_JSON` (started by the pool)."""

import sys

from validation.pool import worker_main

if __name__ == "__main__":
    worker_main(sys.argv[1:])
