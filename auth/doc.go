// Package auth turns a request into an Identity: credential extraction, key and password verification, client IP.
package auth
