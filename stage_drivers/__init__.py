"""Device drivers: Newport XPS (TCP), Newport ESP301 (serial), Light Conversion Pharos (HTTP).

A driver knows its wire protocol and nothing about microdiscs.
"""
