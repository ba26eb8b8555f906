"""SMS channel: an "SMS-faktura" notice via LINK Mobility's Common REST API, with delivery reports."""

from gateway.channels.sms.adapter import SmsAdapter, SmsConfig
from gateway.channels.sms.dlr import DLR_PATH, make_dlr_handler, parse_delivery_report, read_delivery_report

__all__ = ["SmsAdapter", "SmsConfig", "DLR_PATH", "make_dlr_handler", "parse_delivery_report",
           "read_delivery_report"]
