"""Notifications beyond the in-app inbox (engine/runtime/notifications.py): webhooks."""
from engine.notify.webhooks import DeliveryView, WebhookCreate, Webhooks, WebhookView

__all__ = ["DeliveryView", "WebhookCreate", "WebhookView", "Webhooks"]
