"""Organisation webhooks: the notifications of an organisation POSTed to its HTTPS
endpoints in the Standard Webhooks shape, from a durable outbox in PostgreSQL."""
