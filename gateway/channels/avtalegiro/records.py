"""Record layouts of the AvtaleGiro claim file and the files from Nets.

Sources: AvtaleGiro systemspesifikasjon v3.3 (Nov 2016) and the OCR giro
system manual, as summarised in docs/avtalegiro.md (positions 1-based,
inclusive). Each layout covers columns 1-80; ``Layout`` asserts that at import.
"""

from __future__ import annotations

from .layout import Field, Kind, Layout, NETS_ID, header

SERVICE_NONE = "00"
SERVICE_AVTALEGIRO = "21"
SERVICE_OCR = "09"

# AvtaleGiro transaction types (columns 5-6 of transaction records)
TT_PAYEE_NOTIFIES = "02"   # payee notifies the payer itself; no spec records
TT_BANK_NOTIFIES = "21"    # bank sends "AvtaleGiro info", spec records allowed
TT_CANCELLATION = "93"     # sletteanmodning
TT_MANDATE = "94"          # fast betalingsoppdrag (from Nets)

# Assignment types (columns 5-6 of assignment start/end)
AT_CLAIMS = "00"
AT_MANDATES = "24"
AT_CANCELLATIONS = "36"

OCR_TRANSACTION_TYPES = tuple(f"{n:02d}" for n in range(10, 22))
OCR_TEXT_TYPES = ("20", "21")  # amount item 3 (free text) only for these


# --- claim file to Nets -----------------------------------------------------

CLAIM_TRANSMISSION_START = Layout("transmission_start", header("00", "00", "10") + (
    Field("data_sender", 9, 16, Kind.NUM),
    Field("transmission_number", 17, 23, Kind.NUM),
    Field("data_recipient", 24, 31, Kind.CONST, NETS_ID),
    Field("filler", 32, 80, Kind.ZEROS),
))


def claim_assignment_start(assignment_type: str) -> Layout:
    return Layout("assignment_start", header("21", assignment_type, "20") + (
        Field("filler_9_17", 9, 17, Kind.ZEROS),
        Field("assignment_number", 18, 24, Kind.NUM),
        Field("assignment_account", 25, 35, Kind.NUM),
        Field("filler", 36, 80, Kind.ZEROS),
    ))


def claim_item1(transaction_type: str) -> Layout:
    return Layout("amount_item_1", header("21", transaction_type, "30") + (
        Field("transaction_number", 9, 15, Kind.NUM),
        Field("due_date", 16, 21, Kind.DATE),
        Field("blank_22_32", 22, 32, Kind.BLANKS),
        Field("amount", 33, 49, Kind.NUM),
        Field("kid", 50, 74, Kind.KID),
        Field("filler", 75, 80, Kind.ZEROS),
    ))


def claim_item2(transaction_type: str) -> Layout:
    return Layout("amount_item_2", header("21", transaction_type, "31") + (
        Field("transaction_number", 9, 15, Kind.NUM),
        Field("payer_name", 16, 25, Kind.ALPHA),
        Field("blank_26_50", 26, 50, Kind.BLANKS),
        Field("external_reference", 51, 75, Kind.ALPHA),
        Field("filler", 76, 80, Kind.ZEROS),
    ))


CLAIM_SPECIFICATION = Layout("specification", header("21", "21", "49") + (
    Field("transaction_number", 9, 15, Kind.NUM),
    Field("message_type", 16, 16, Kind.CONST, "4"),  # 4 = payment notice
    Field("line_number", 17, 19, Kind.NUM),
    Field("column_number", 20, 20, Kind.NUM),
    Field("text", 21, 60, Kind.TEXT),
    Field("filler", 61, 80, Kind.ZEROS),
))


def claim_assignment_end(assignment_type: str) -> Layout:
    return Layout("assignment_end", header("21", assignment_type, "88") + (
        Field("number_of_transactions", 9, 16, Kind.NUM),
        Field("number_of_records", 17, 24, Kind.NUM),
        Field("sum_amount", 25, 41, Kind.NUM),
        Field("earliest_due_date", 42, 47, Kind.DATE0),
        Field("latest_due_date", 48, 53, Kind.DATE0),
        Field("filler", 54, 80, Kind.ZEROS),
    ))


CLAIM_TRANSMISSION_END = Layout("transmission_end", header("00", "00", "89") + (
    Field("number_of_transactions", 9, 16, Kind.NUM),
    Field("number_of_records", 17, 24, Kind.NUM),
    Field("sum_amount", 25, 41, Kind.NUM),
    Field("earliest_due_date", 42, 47, Kind.DATE0),
    Field("filler", 48, 80, Kind.ZEROS),
))


# --- files from Nets ----------------------------------------------------------

INCOMING_TRANSMISSION_START = Layout("transmission_start", header("00", "00", "10") + (
    Field("data_sender", 9, 16, Kind.NUM),             # 00008080 (Nets)
    Field("transmission_number", 17, 23, Kind.NUM),    # Nets serial
    Field("data_recipient", 24, 31, Kind.NUM),         # our kundeenhet-ID
    Field("filler", 32, 80, Kind.ZEROS),
))

MANDATE_ASSIGNMENT_START = Layout("assignment_start", header("21", "24", "20") + (
    Field("filler_9_17", 9, 17, Kind.ZEROS),
    Field("assignment_number", 18, 24, Kind.NUM),
    Field("assignment_account", 25, 35, Kind.NUM),
    Field("filler", 36, 80, Kind.ZEROS),
))

MANDATE_RECORD = Layout("mandate", header("21", "94", "70") + (
    Field("serial_number", 9, 15, Kind.NUM),
    Field("registration_type", 16, 16, Kind.CHOICE, choices=("0", "1", "2")),
    Field("kid", 17, 41, Kind.KID),
    Field("written_notice", 42, 42, Kind.CHOICE, choices=("J", "N")),
    Field("filler", 43, 80, Kind.ZEROS),
))

MANDATE_ASSIGNMENT_END = Layout("assignment_end", header("21", "24", "88") + (
    Field("number_of_transactions", 9, 16, Kind.NUM),
    Field("number_of_records", 17, 24, Kind.NUM),
    Field("filler", 25, 80, Kind.ZEROS),
))

OCR_ASSIGNMENT_START = Layout("assignment_start", header("09", "00", "20") + (
    Field("agreement_id", 9, 17, Kind.NUM),
    Field("assignment_number", 18, 24, Kind.NUM),
    Field("assignment_account", 25, 35, Kind.NUM),
    Field("filler", 36, 80, Kind.ZEROS),
))


def ocr_item1(transaction_type: str) -> Layout:
    return Layout("amount_item_1", header("09", transaction_type, "30") + (
        Field("transaction_number", 9, 15, Kind.NUM),
        Field("settlement_date", 16, 21, Kind.DATE),
        Field("centre_id", 22, 23, Kind.NUM),
        Field("day_code", 24, 25, Kind.NUM),
        Field("partial_settlement_number", 26, 26, Kind.NUM),
        Field("serial_number", 27, 31, Kind.NUM),
        Field("sign", 32, 32, Kind.CHOICE, choices=("0", "-")),
        Field("amount", 33, 49, Kind.NUM),
        Field("kid", 50, 74, Kind.KID),
        Field("card_issuer", 75, 80, Kind.NUM),  # zeros unless card purchase
    ))


def ocr_item2(transaction_type: str) -> Layout:
    return Layout("amount_item_2", header("09", transaction_type, "31") + (
        Field("transaction_number", 9, 15, Kind.NUM),
        Field("form_number", 16, 25, Kind.NUM),
        Field("archive_reference", 26, 34, Kind.NUM),
        Field("filler_35_41", 35, 41, Kind.TEXT),  # documented filler, used in practice
        Field("bank_date", 42, 47, Kind.DATE0),
        Field("debit_account", 48, 58, Kind.NUM),
        Field("filler", 59, 80, Kind.ZEROS),
    ))


def ocr_item3(transaction_type: str) -> Layout:
    return Layout("amount_item_3", header("09", transaction_type, "32") + (
        Field("transaction_number", 9, 15, Kind.NUM),
        Field("text", 16, 55, Kind.TEXT),
        Field("filler", 56, 80, Kind.ZEROS),
    ))


OCR_ASSIGNMENT_END = Layout("assignment_end", header("09", "00", "88") + (
    Field("number_of_transactions", 9, 16, Kind.NUM),
    Field("number_of_records", 17, 24, Kind.NUM),
    Field("sum_amount", 25, 41, Kind.NUM),
    Field("settlement_date", 42, 47, Kind.DATE0),
    Field("earliest_settlement_date", 48, 53, Kind.DATE0),
    Field("latest_settlement_date", 54, 59, Kind.DATE0),
    Field("filler", 60, 80, Kind.ZEROS),
))

INCOMING_TRANSMISSION_END = Layout("transmission_end", header("00", "00", "89") + (
    Field("number_of_transactions", 9, 16, Kind.NUM),
    Field("number_of_records", 17, 24, Kind.NUM),
    Field("sum_amount", 25, 41, Kind.NUM),
    Field("settlement_date", 42, 47, Kind.DATE0),  # zeros allowed (mandates only)
    Field("filler", 48, 80, Kind.ZEROS),
))
