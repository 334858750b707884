"""The ground floor every app builds on: queues and Redis, action refusals and their API adapter,
roles and permission classes, and the hook registry for follow-up actions. It imports no app."""
