"""Marshmallow schemas: the same classes validate requests and document the API."""
