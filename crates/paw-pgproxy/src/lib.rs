//! paw-pgproxy: temporary PostgreSQL login roles minted for one brokered session, and the
//! wire-protocol splice that logs in as them on the user's behalf (the user never sees the
//! password).
