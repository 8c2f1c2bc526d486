"""Pydantic models: the activity events and the API's request/response shapes."""
