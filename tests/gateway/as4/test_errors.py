"""ebMS errors: codes, and bounded reasons (they may quote hostile header values)."""

from __future__ import annotations

import pytest

from gateway.as4 import EbmsError, build_error_signal
from gateway.as4.errors import MAX_REASON_CHARS

from .conftest import NOW


def test_reason_and_detail_are_capped_in_the_error_and_its_signal(pki):
    huge = "x" * 500_000
    err = EbmsError("EBMS:0009", f"bad MessageId {huge}", detail=huge)
    assert len(err.reason) < MAX_REASON_CHARS + 100 and err.reason.endswith("more characters]")
    assert len(err.detail) < MAX_REASON_CHARS + 100 and len(str(err)) < MAX_REASON_CHARS + 200
    signal = build_error_signal(err, message_id="e@x", timestamp=NOW, signing_key=pki.receiver.key,
                                signing_cert=pki.receiver.cert)
    assert len(signal) < 20_000


def test_short_reasons_are_kept_whole():
    err = EbmsError("EBMS:0004", "no such participant", detail="PEPPOL:NOT_SERVICED")
    assert (err.reason, err.detail) == ("no such participant", "PEPPOL:NOT_SERVICED") and err.is_not_serviced


def test_unknown_own_codes_are_refused():
    with pytest.raises(ValueError):
        EbmsError("EBMS:9999", "made up")
