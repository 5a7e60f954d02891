"""One router per area of the API; each holds HTTP concerns only (see :mod:`api.app`)."""
