"""A validation worker that runs only the bare transforms: the ceiling of the HTTP API path.

`python bench/validate.py` serves `POST /api/v1/validate` once more with pool workers started from
this module: same pool, IPC, server, authentication and load client, but each document costs the
worker exactly what it costs the bare-transform processes (decode, Saxon parse, CEN + PEPPOL
transforms) and the reply is a fixed `{"valid": true}`. Whatever that run loses against the bare
processes is the price of serving over HTTP from worker processes on the same cores, which no
change to the engine can win back.
"""

import sys

from validation import engine, pool

SET = "peppol-billing-invoice@3.0.21"


class _Valid:
    @staticmethod
    def to_dict() -> dict:
        return {"valid": True}


class BareTransforms(engine.Validator):
    def validate(self, data: bytes, rules=None, at=None, **_) -> _Valid:
        node = engine.saxon_processor().parse_xml(xml_text=data.decode("utf-8"), encoding="UTF-8")
        for layer in self.catalogue.sets[SET].schematron:
            self._stylesheet(layer).transform_to_string(xdm_node=node)
        return _Valid()


if __name__ == "__main__":
    engine.Validator = BareTransforms  # the worker loop builds its validator from this name
    pool.worker_main(sys.argv[1:])
