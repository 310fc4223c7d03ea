"""Users: accounts that sign in, and their profile."""
