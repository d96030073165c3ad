"""GraphQL operations the railway backend sends (validated against Railway's schema in tests)."""
