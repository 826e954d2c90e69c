"""Talking to Twilio: request signatures, the REST API (transfers, outbound
calls, number set-up) and the webhook and media-stream routes."""
