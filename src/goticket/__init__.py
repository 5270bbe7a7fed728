"""GoTicket: an open ticketing backend that never oversells."""

__version__ = "0.1.0"
