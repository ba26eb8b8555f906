"""The validation engine: one document in, one report out.

    v = Validator(Path("var/artefacts"))
    report = v.validate(xml_bytes)                    # rule set chosen from the document
    report = v.validate(xml_bytes, rules="peppol-billing-invoice@3.0.19")
    report = v.validate(xml_bytes, at=datetime.date(2025, 9, 1))   # rules in force that day

Layers run in order: the UBL XSD (lxml, each schema compiled once per process), then each
Schematron layer as the official compiled XSLT (saxonche, each stylesheet compiled once per
process and reused; the document is parsed by Saxon once and that tree is given to every layer).

Hardening of the XSLT side: the Saxon processor is configured with an empty
`allowedProtocols` list, so no stylesheet can read a file or a URL (document(), doc(),
unparsed-text(), collection() all fail); stylesheets are compiled from verified text rather than
from a path for the same reason. Documents cannot carry a DTD (see validation.xmlinput), so the
parser has no entities to resolve.

Calls from several threads are serialised by a lock (compiled stylesheets are not thread-safe,
and saxonche holds the GIL while it works, so threads would not run in parallel anyway). Scale
with processes: see validation.pool. For big documents a helper thread does the lxml side while
Saxon works (see `_Helper`).
"""

from __future__ import annotations

import datetime as dt
import os
import queue
import re
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Iterable

from lxml import etree

from schematron.sync import MANIFEST
from validation import svrl as svrl_mod
from validation import xmlinput
from validation.artefacts import Catalogue, Layer, RuleSet
from validation.errors import ArtefactError, NotXmlError
from validation.report import Item, LayerResult, Report

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
ALLOWED_PROTOCOLS = "http://saxon.sf.net/feature/allowedProtocols"

_processor = None
_processor_lock = threading.Lock()


def saxon_processor():
    """The process-wide Saxon processor, with all resource access switched off."""
    global _processor
    with _processor_lock:
        if _processor is None:
            from saxonche import PySaxonProcessor

            proc = PySaxonProcessor(license=False)
            proc.set_configuration_property(ALLOWED_PROTOCOLS, "")
            _processor = proc
        return _processor


class _StderrTrap:
    """Saxon reports dynamic errors on the process's stderr (fd 2) in addition to raising them.
    While a transform runs, fd 2 points at a scratch file: the noise stays out of the CLI's and
    the server's output and the text is used to enrich the error item (it names the XPath error
    code, e.g. FORG0001)."""

    def __init__(self) -> None:
        self._file = None
        self._saved: int | None = None
        self._dirty = False
        self._seen = 0  # bytes already handed out by text(): each layer's error gets only its own

    def __enter__(self) -> "_StderrTrap":
        try:
            sys.stderr.flush()
        except (AttributeError, ValueError, OSError):
            pass
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile()
            fd = self._file.fileno()
            if self._dirty or os.lseek(fd, 0, os.SEEK_CUR):
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                self._dirty = False
            self._seen = 0
            self._saved = os.dup(2)
            os.dup2(fd, 2)
        except OSError:
            self._saved = None
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
            self._saved = None

    def text(self) -> str:
        """What the engine wrote since the previous call (pread: Saxon keeps appending at the
        shared file offset, so it must not move)."""
        if self._file is None:
            return ""
        fd = self._file.fileno()
        self._dirty = True
        start, end = self._seen, os.fstat(fd).st_size
        self._seen = end
        return os.pread(fd, min(end - start, 65536), start).decode("utf-8", "replace")


class _NoTrap:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def text(self) -> str:
        return ""


class _Helper:
    """One background thread for the lxml side of a big document.

    saxonche keeps the GIL while it parses or transforms; lxml releases it while it parses and
    validates. For a big document the lxml parse therefore runs during Saxon's parse, and the XSD
    validation during the Schematron transforms, on another core when one is free. `submit` waits
    until the helper has picked the job up (handing it the GIL), so the overlap really happens.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, fn, *args) -> Future:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="sendgw-validation-helper", daemon=True)
            self._thread.start()
        fut: Future = Future()
        started = threading.Event()
        self._queue.put((fn, args, fut, started))
        started.wait()
        return fut

    def _loop(self) -> None:
        while True:
            fn, args, fut, started = self._queue.get()
            started.set()
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                fut.set_exception(exc)


# Documents from this size on overlap the lxml work with Saxon's (see _Helper); below it the
# hand-over costs more than it saves.
OVERLAP_MIN_BYTES = 256 * 1024

# Copies an SVRL tree to the output only when it holds a finding: a valid document's SVRL is
# never serialised (see Validator._transform).
_FINDINGS_FILTER = f"""<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="{svrl_mod.SVRL_NS}">
  <xsl:output method="xml" indent="no" omit-xml-declaration="yes"/>
  <xsl:template match="/">
    <xsl:if test="//(svrl:failed-assert | svrl:successful-report)"><xsl:copy-of select="."/></xsl:if>
  </xsl:template>
</xsl:stylesheet>"""
_XPATH_CODE = re.compile(r"\b((?:FO|XP|XT|XS|SX|FODC|FOUT)[A-Z]{0,4}\d{4})\b")
_NS_SHORT = {
    "{urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2}": "cbc:",
    "{urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2}": "cac:",
    "{urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2}": "ext:",
}
_MAINDOC_NS = re.compile(r"\{urn:oasis:names:specification:ubl:schema:xsd:[A-Za-z]+-2\}")


def _short_xsd_message(msg: str) -> str:
    for long, short in _NS_SHORT.items():
        msg = msg.replace(long, short)
    return _MAINDOC_NS.sub("", msg)


class Validator:
    """Validate EHF / Peppol UBL documents with the pinned official artefacts."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        schematron_after_xsd_error: bool = True,
        manifest_path: Path = MANIFEST,
        quiet_engine: bool = True,
    ):
        self.cache_dir = Path(cache_dir)
        self.max_bytes = max_bytes
        self.schematron_after_xsd_error = schematron_after_xsd_error
        self.catalogue = Catalogue(self.cache_dir, manifest_path)
        self._xslt: dict[str, object] = {}
        self._xsd: dict[str, etree.XMLSchema] = {}
        self._chosen: dict[tuple, RuleSet] = {}  # selection results (selection is deterministic)
        self._executables: dict[str, tuple] = {}  # set id -> compiled stylesheets of its layers
        self._lock = threading.RLock()
        self._trap = _StderrTrap() if quiet_engine else _NoTrap()
        self._xslt_processor = None
        self._findings_filter = None  # compiled _FINDINGS_FILTER
        self._helper = _Helper()

    # -- artefacts -------------------------------------------------------------------------------
    def rule_sets(self, on: dt.date | None = None) -> list[dict]:
        """Every rule set with version, valid-from date and status on `on` (default today)."""
        on = on or dt.date.today()
        out = []
        for rs in sorted(self.catalogue.sets.values(), key=lambda r: (r.family, r.valid_from)):
            out.append({
                "id": rs.id, "family": rs.family, "title": rs.title, "version": rs.version,
                "valid_from": rs.valid_from.isoformat(), "status": self.catalogue.status_on(rs, on),
                "pinned_status": rs.status,
                "root_element": rs.root_element, "customization_id": rs.customization_id,
                "customization_match": rs.customization_match, "profile_id_contains": rs.profile_id_contains,
                "layers": [{"name": lay.name, "kind": lay.kind, "artefact": lay.artefact, "version": lay.version}
                           for lay in rs.layers],
                "notes": rs.notes,
            })
        return out

    def warm_up(self, ids: Iterable[str] | None = None) -> list[str]:
        """Compile the stylesheets and schemas of the given sets (ids or family names; default:
        every set in force today) so that the first document does not pay for it."""
        today = dt.date.today()
        if ids is None:
            sets = {self.catalogue.in_force(f, today, strict=False).id: None for f in self.catalogue.families}
            chosen = [self.catalogue.sets[i] for i in sets]
        else:
            chosen = [self.catalogue.by_name(i, today, strict=False) for i in ids]
        self._filter()
        for rs in chosen:
            if rs.xsd is not None:
                self._schema(rs.xsd)
            for layer in rs.schematron:
                self._stylesheet(layer)
        return [rs.id for rs in chosen]

    def _schema(self, layer: Layer) -> etree.XMLSchema:
        schema = self._xsd.get(layer.path)
        if schema is None:
            with self._lock:
                schema = self._xsd.get(layer.path)
                if schema is None:
                    path = self.catalogue.verify_layer(layer)
                    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
                    try:
                        schema = etree.XMLSchema(etree.parse(str(path), parser))
                    except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
                        raise ArtefactError(f"{path}: cannot load the schema: {exc}") from exc
                    self._xsd[layer.path] = schema
        return schema

    def _stylesheet(self, layer: Layer):
        ex = self._xslt.get(layer.path)
        if ex is None:
            with self._lock:
                ex = self._xslt.get(layer.path)
                if ex is None:
                    text = self.catalogue.read(layer.path).decode("utf-8").lstrip("\ufeff")
                    try:
                        with self._trap:
                            ex = self._compiler().compile_stylesheet(stylesheet_text=text, encoding="UTF-8")
                    except Exception as exc:  # PySaxonApiError
                        raise ArtefactError(f"{self.cache_dir / layer.path}: cannot compile: {exc}") from exc
                    self._xslt[layer.path] = ex
        return ex

    # -- validation ------------------------------------------------------------------------------
    def choose(self, doc: xmlinput.Document, rules: str | None, at: dt.date | None) -> RuleSet:
        on = at or dt.date.today()
        strict = at is not None
        key = (rules, doc.namespace, doc.local, doc.customization_id, doc.profile_id, on, strict)
        rs = self._chosen.get(key)
        if rs is None:
            if rules:
                rs = self.catalogue.by_name(rules, on, strict=strict)
            else:
                rs = self.catalogue.select(doc.namespace, doc.local, doc.customization_id, doc.profile_id,
                                           on, strict=strict)
            if len(self._chosen) > 4096:
                self._chosen.clear()
            self._chosen[key] = rs
        return rs

    def validate(
        self,
        data: bytes,
        rules: str | None = None,
        at: dt.date | None = None,
        *,
        xsd: bool = True,
        svrl: bool = True,
    ) -> Report:
        """Validate one document. Raises ValidationInputError subclasses for unusable input and
        ArtefactError for a missing/tampered cache; every other outcome is a Report.

        `rules` names a set (`family@version`) or a family (then the release in force on `at`);
        `at` re-validates with the rules that were in force on that date. `xsd=False` runs only
        the Schematron layers (the official unit tests are fragments, not schema-valid documents).
        `svrl=False` when the caller will not render the report as SVRL: the layers' SVRL is then
        kept as Saxon trees and serialised only when it holds a finding (see `_transform`).
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        if len(data) >= OVERLAP_MIN_BYTES:
            text = xmlinput.early_text(data, self.max_bytes)
            if text is not None:
                with self._lock:
                    return self._validate_overlapped(data, text, rules, at, xsd, svrl)
        doc = xmlinput.parse(data, self.max_bytes)
        rs = self.choose(doc, rules, at)
        with self._lock:
            return self._run(doc, rs, xsd, svrl)

    def _validate_overlapped(self, data: bytes, text: str, rules, at, run_xsd: bool, keep_svrl: bool) -> Report:
        """A big plain (non-SBDH) document: lxml parses while Saxon parses, and the XSD layer
        validates while the Schematron layers run. Same results as the sequential path."""
        parsing = self._helper.submit(xmlinput.parse, data, self.max_bytes, text)
        node = error = None
        with self._trap:
            try:
                node = saxon_processor().parse_xml(xml_text=text, encoding="UTF-8")
            except Exception as exc:  # PySaxonApiError; lxml's verdict below takes precedence
                error = exc
        doc = parsing.result()  # raises NotXmlError, HostileXmlError ... first
        if error is not None:
            raise NotXmlError(f"not well-formed XML: {str(error).strip()}")
        if doc.sbdh or doc.text is not text:  # the sniffed prolog misled us: do it the plain way
            node = None
        rs = self.choose(doc, rules, at)
        return self._run(doc, rs, run_xsd, keep_svrl, node=node)

    def _run(self, doc: xmlinput.Document, rs: RuleSet, run_xsd: bool, keep_svrl: bool, node=None) -> Report:
        report = Report(rules=rs.id, title=rs.title, document_type={
            "root": doc.local, "namespace": doc.namespace, "customization_id": doc.customization_id,
            "profile_id": doc.profile_id, "sbdh": doc.sbdh, "encoding": doc.encoding,
        })
        results = {}
        for layer in rs.layers:
            res = LayerResult(name=layer.name, kind=layer.kind, artefact=layer.artefact, version=layer.version,
                              sha256=self.catalogue.sha256(layer.path))
            report.layers.append(res)
            results[layer.path] = res

        xsd_failed = False
        checking: Future | None = None
        if rs.xsd is not None and run_xsd:
            schema = self._schema(rs.xsd)
            target = doc.root if doc.sbdh else doc.tree
            if node is not None and self.schematron_after_xsd_error:
                checking = self._helper.submit(schema.validate, target)  # runs during the transforms
            else:
                xsd_failed = not self._xsd_result(report, results[rs.xsd.path], rs.xsd, schema,
                                                  schema.validate(target))

        layers = rs.schematron
        if xsd_failed and not self.schematron_after_xsd_error:
            report.schematron_skipped = True
            for layer in layers:
                results[layer.path].status = "skipped"
            return report

        executables = self._executables.get(rs.id)
        if executables is None:
            executables = self._executables[rs.id] = tuple(self._stylesheet(layer) for layer in layers)
        finder = svrl_mod.LineFinder(doc.root)
        overlong = xmlinput.overlong_number(doc)
        if overlong is not None:  # the rules would run for minutes or hours: not evaluated
            outputs = [(layer, None, None, _overlong_item(layer, overlong)) for layer in layers]
        else:
            outputs = self._transform(doc, layers, executables, node, keep_svrl)
        if checking is not None:
            xsd_report = Report(rules=rs.id)
            self._xsd_result(xsd_report, results[rs.xsd.path], rs.xsd, schema, checking.result())
            report.errors[:0] = xsd_report.errors  # XSD items first, as in the sequential path
        for layer, kept, found, err in outputs:
            res = results[layer.path]
            if err is not None:
                res.status = "error"
                res.fatal += 1
                report.add(err)
                continue
            res.svrl = kept
            for f in svrl_mod.findings(found) if found else ():
                severity = svrl_mod.severity(f.flag)
                report.add(Item(rule=f.rule, severity=severity, message=f.message, location=f.location,
                                line=finder.line(f.location), layer=layer.name, test=f.test))
                if severity == "fatal":
                    res.fatal += 1
                else:
                    res.warnings += 1
            res.status = "failed" if res.fatal else "passed"
        return report

    def _transform(self, doc: xmlinput.Document, layers, executables, node, keep_svrl: bool) -> list[tuple]:
        """(layer, SVRL kept, SVRL with findings, None) per layer, or (layer, None, None,
        DYNAMIC-ERROR item) for a layer that stopped with a dynamic error.

        Serialising the SVRL costs ~0.15 ms per layer for a small document (the official rules
        list every fired rule), about 7 % of the transform itself. When the SVRL is not kept, the
        result stays a Saxon tree and is serialised only if it holds a failed assert or a
        successful report; a valid document is never serialised at all."""
        with self._trap as trap:
            if node is None:
                try:
                    node = saxon_processor().parse_xml(xml_text=doc.text, encoding="UTF-8")
                except Exception as exc:  # PySaxonApiError
                    raise NotXmlError(f"not well-formed XML: {str(exc).strip()}") from None
            outputs = []
            for layer, ex in zip(layers, executables, strict=True):
                try:
                    if keep_svrl:
                        text = ex.transform_to_string(xdm_node=node)
                        outputs.append((layer, text, text, None))
                    else:
                        outputs.append((layer, None, self._findings_text(ex.transform_to_value(xdm_node=node)),
                                        None))
                except Exception as exc:  # PySaxonApiError: a dynamic error inside the official rules
                    message = _dynamic_message(layer, str(exc).strip(), trap.text())
                    outputs.append((layer, None, None, Item(rule="DYNAMIC-ERROR", severity="fatal",
                                                            message=message, location="/", line=None,
                                                            layer=layer.name)))
        return outputs

    def _findings_text(self, result) -> str | None:
        """The SVRL tree `result` serialised if it holds a failed assert or a successful report
        (one call into Saxon with a small compiled filter: cheaper than an XPath query and then a
        serialisation, ~0.05 ms)."""
        node = result.head if result is not None else None
        if node is None:
            return None
        return self._filter().transform_to_string(xdm_node=node) or None

    def _filter(self):
        if self._findings_filter is None:
            with self._lock:
                if self._findings_filter is None:
                    self._findings_filter = self._compiler().compile_stylesheet(stylesheet_text=_FINDINGS_FILTER)
        return self._findings_filter

    def _compiler(self):
        """The XSLT 3.0 compiler of this validator (call with the lock held)."""
        if self._xslt_processor is None:
            self._xslt_processor = saxon_processor().new_xslt30_processor()
        return self._xslt_processor

    @staticmethod
    def _xsd_result(report: Report, res: LayerResult, layer: Layer, schema: etree.XMLSchema, ok: bool) -> bool:
        if ok:
            res.status = "passed"
            return True
        res.status = "failed"
        for e in schema.error_log:
            report.add(Item(rule="XSD", severity="fatal", message=_short_xsd_message(e.message),
                            location=e.path or "", line=e.line or None, layer=layer.name))
            res.fatal += 1
        return False


def _overlong_item(layer: Layer, el: etree._Element) -> Item:
    name = etree.QName(el).localname
    return Item(rule="DYNAMIC-ERROR", severity="fatal", layer=layer.name,
                location=el.getroottree().getpath(el), line=el.sourceline,
                message=(f"the {layer.name} rules were not evaluated: cbc:{name} holds a number of "
                         f"{len(el.xpath('string()').strip()):,} characters, and numbers longer than "
                         f"{xmlinput.MAX_NUMBER_CHARS:,} characters are not handed to the rules "
                         f"(their decimal arithmetic would run for minutes or hours)"))


def _dynamic_message(layer: Layer, message: str, engine_output: str) -> str:
    code = _XPATH_CODE.search(engine_output or "")
    prefix = f"{code.group(1)}: " if code and code.group(1) not in message else ""
    return (f"the {layer.name} rules stopped with a dynamic error, so the rest of this layer was not "
            f"evaluated (usually a value of the wrong type in a document that is not schema-valid): "
            f"{prefix}{message}")
