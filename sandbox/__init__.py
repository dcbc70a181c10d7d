"""A local Codat sandbox: Codat's API, webhooks, clock and faults, with its own state."""
