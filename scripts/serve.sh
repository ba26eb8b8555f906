#!/usr/bin/env bash
# Start the gateway on the embedded default (SQLite under ./var/, 127.0.0.1:8080).
source "$(dirname "$0")/bootstrap.sh" run
.venv/bin/sendgw db upgrade
exec .venv/bin/sendgw serve "$@"
