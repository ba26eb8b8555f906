# Sourced by scripts/serve.sh and scripts/test.sh: make ./.venv hold everything the project needs.
# Idempotent and quick when nothing changed (a stamp over pyproject.toml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.sendgw-installed-$(sha256sum pyproject.toml | cut -c1-16)-${1:-run}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "${1:-run}" = "test" ]; then
    .venv/bin/python -m pip install -q -e ".[test]"
    # `as4` is the independent AS4 peer for interop tests. It pins cryptography<47 but works
    # with current releases; installing it without its pins keeps the project on a current one.
    .venv/bin/python -m pip install -q --no-deps "as4==0.2.0"
    .venv/bin/python -m pip install -q "pydantic>=2" "urllib3>=2"
  else
    .venv/bin/python -m pip install -q -e .
  fi
  rm -f .venv/.sendgw-installed-*
  touch "$stamp"
fi
# Official artefacts and Peppol CA certificates: from a local mirror when there is one
# (SENDGW_ARTEFACTS_MIRROR / SENDGW_TRUST_MIRROR, default ../shared/...), else the official sources.
export SENDGW_ARTEFACTS_MIRROR="${SENDGW_ARTEFACTS_MIRROR:-$( [ -d ../shared/artefacts ] && cd ../shared/artefacts && pwd || true)}"
export SENDGW_TRUST_MIRROR="${SENDGW_TRUST_MIRROR:-$( [ -d ../shared/pki ] && cd ../shared/pki && pwd || true)}"
.venv/bin/sendgw artefacts sync --quiet
.venv/bin/sendgw certs sync --quiet
