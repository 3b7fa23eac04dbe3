"""The service side that answers other services: Prometheus metrics of the latest scans (``metrics``), a
blackbox-exporter-style prober that scans on request (``probe``), and the HTTP server that exposes both (``http``).
"""
