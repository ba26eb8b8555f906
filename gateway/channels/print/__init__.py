"""Print channel: print-ready PDF + manifest handed to a print provider through a drop directory."""

from gateway.channels.print.adapter import PrintAdapter, PrintConfig

__all__ = ["PrintAdapter", "PrintConfig"]
