"""rc-flag: RFI flagging by strategy, flag versions and flag summaries."""
