"""`sendgw render`: exit codes, one-line reasons, PDF/HTML/print outputs."""

from __future__ import annotations

import io

import pikepdf

from gateway.cli import main

EHF_FAKTURA = "ehf-billing-3/examples/ehf-3-faktura-1.xml"


def test_render_pdf_html_and_print(shared_dir, tmp_path):
    src = shared_dir / "conformance" / EHF_FAKTURA
    out = tmp_path / "f.pdf"
    assert main(["render", str(src), "-o", str(out)]) == 0
    pdf = pikepdf.open(io.BytesIO(out.read_bytes()))
    assert pdf.attachments["invoice.xml"].get_file().read_bytes() == src.read_bytes()
    html = tmp_path / "f.html"
    assert main(["render", str(src), "-o", str(html), "--html"]) == 0
    assert "0003434323213231" in html.read_text(encoding="utf-8")
    printed = tmp_path / "p.pdf"
    assert main(["render", str(src), "-o", str(printed), "--print"]) == 0
    assert len(pikepdf.open(printed).attachments) == 0


def test_unusable_input_exits_2_with_one_line(tmp_path, capsys):
    cases = {
        "order.xml": b"<Order xmlns='urn:oasis:names:specification:ubl:schema:xsd:Order-2'/>",
        "xxe.xml": b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        "junk.xml": b"\x00\x01junk",
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        out = tmp_path / (name + ".pdf")
        assert main(["render", str(path), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("sendgw render:"), err
        assert not out.exists()
    assert main(["render", str(tmp_path / "missing.xml"), "-o", str(tmp_path / "m.pdf")]) == 2
    assert "cannot read" in capsys.readouterr().err
