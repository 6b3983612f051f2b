"""Thin gateways to the external systems: Salesforce (simple-salesforce) and WHMCS (requests).

Every vendor failure surfaces as `TransientError` (retry later) or `PermanentError` (fail the
order), nothing else.
"""

from .errors import IntegrationError, PermanentError, TransientError
from .records import (
    OrderActivation,
    OrderFacts,
    OrderLine,
    OrderRecord,
    OrderSummary,
    WhmcsOrder,
)
from .salesforce import SalesforceGateway
from .whmcs import WhmcsGateway

__all__ = [
    "IntegrationError",
    "OrderActivation",
    "OrderFacts",
    "OrderLine",
    "OrderRecord",
    "OrderSummary",
    "PermanentError",
    "SalesforceGateway",
    "TransientError",
    "WhmcsGateway",
    "WhmcsOrder",
]
