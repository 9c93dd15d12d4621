"""Webhook delivery: signing, the retry policy, the HTTP attempt and the outbox worker (docs/webhooks.md).

The events themselves are written by the store, in the transaction of the call transition they
announce (store/call_ingest.py, store/webhook_outbox.py); this package only delivers them.
"""
