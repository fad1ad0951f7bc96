//! Handler tests: the router with fake runners, no socket.
