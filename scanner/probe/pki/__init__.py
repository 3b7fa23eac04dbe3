"""The served certificates: their facts, trust stores and path building, revocation, and the fetches they need."""
