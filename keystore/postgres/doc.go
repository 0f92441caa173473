// Package postgres is the shared keystore.Store: PostgreSQL through a pgxpool.Pool, for any
// number of keygate instances and the CLI at once.
//
// Migrations are embedded SQL files applied under a session advisory lock, so that
// instances starting together never race. Limits checked inside a transaction hold
// because the principal's row is locked first (SELECT ... FOR UPDATE). Every write that
// can deny access sends NOTIFY keygate_changes in its transaction; Watch LISTENs on a
// connection of its own and so hears the commits of every instance within milliseconds.
// LISTEN and the session advisory lock need a session of their own: connect directly or
// through a pooler in session mode, not in transaction mode.
// Times are kept to the microsecond (timestamptz): the store truncates the times it is
// given and the times it sets.
package postgres
