"""HTTP handlers, one blueprint per resource."""
