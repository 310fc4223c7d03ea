"""Role-based access control: built-in and custom roles, permission checks per route."""
