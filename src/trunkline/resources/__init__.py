"""The Telnyx domain: request and record models, and the rules of each resource. No HTTP, no SQL text."""
