"""AvtaleGiro / OCR Giro file formats (Nets 80-character records), sans-IO.

``claims`` writes claim files, ``incoming`` reads mandate and settlement files
from Nets, ``validator`` is the simulator side (strict claim parser and
generators), ``matching`` reconciles settlement payments with open invoices.
"""
