"""Logic that spans stores; functions call these, these call repositories."""
