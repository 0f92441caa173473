// Package sqlite is the embedded keystore.Store: one SQLite file (modernc.org/sqlite, no
// cgo) in WAL mode, shared by a running serve and the CLI. Writers take the database lock
// at BEGIN (BEGIN IMMEDIATE), so limits checked inside a transaction hold; Watch notices
// commits by other connections and processes through PRAGMA data_version and a change log.
package sqlite
