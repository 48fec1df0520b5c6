"""Development tools: the tool's speed bench and the channels_last measurement (not installed)."""
