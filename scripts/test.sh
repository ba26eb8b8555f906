#!/usr/bin/env bash
# Run the whole test suite: installs what it needs, syncs the artefacts, then pytest.
# Extra arguments go to pytest. SENDGW_TEST_DATABASES=sqlite,postgresql selects storage backends.
source "$(dirname "$0")/bootstrap.sh" test
exec .venv/bin/python -m pytest "$@"
