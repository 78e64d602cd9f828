"""Interact: the customer's website chat — JSON API, WebSocket, embeddable widget."""
