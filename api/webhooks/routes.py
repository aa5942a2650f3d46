"""/api/webhooks: outside systems notified of djflow's notifications (config.write), and each one's delivery log."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from api.deps import allowed
from api.pages import Id
from engine import DeliveryView, WebhookCreate, Webhooks, WebhookView

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Admin = allowed("config.write")


def _service(request: Request) -> Webhooks:
    return request.app.state.engine.webhooks


@router.get("", operation_id="webhooks_list", response_model=list[WebhookView])
def list_webhooks(request: Request, principal: Admin) -> list[WebhookView]:
    return _service(request).list(principal)


@router.post("", operation_id="webhooks_create", response_model=WebhookView, status_code=status.HTTP_201_CREATED)
def create_webhook(body: WebhookCreate, request: Request, principal: Admin) -> WebhookView:
    """Subscribe a URL (on the outbound allowlist) to notification events; the signing secret is
    returned in this response only."""
    return _service(request).create(principal, body)


@router.post("/{webhook_id:int}/deactivate", operation_id="webhooks_deactivate", response_model=WebhookView)
def deactivate_webhook(webhook_id: Id, request: Request, principal: Admin) -> WebhookView:
    return _service(request).deactivate(principal, webhook_id)


@router.get("/{webhook_id:int}/deliveries", operation_id="webhooks_deliveries", response_model=list[DeliveryView])
def deliveries(webhook_id: Id, request: Request, principal: Admin,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[DeliveryView]:
    return _service(request).deliveries(principal, webhook_id, limit=limit)
