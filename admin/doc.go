// Package admin serves the admin listener of SPEC §5: /healthz, /readyz and /metrics
// without a token, and the /v1/ API for principals, keys and the audit log behind a
// bearer token (constant-time compare against every configured token). It also builds
// the self-service handler of SPEC §6 (SelfService), which the proxy mounts on the public
// listener. Both share one JSON reader (1 MiB, unknown fields named) and the one mapping
// from keystore errors to HTTP status codes (statusOf). It never imports proxy or a store
// backend.
//
// Every write runs with keystore.WithActor: "admin:<token name>" on /v1/ and
// "self:<principal id>" in self-service, so that the store audits it under that name.
//
// Choices where SPEC §5 and §6 are silent:
//   - keystore.ErrDisabled (a key created for a disabled principal) is 409 conflict: the
//     request is well-formed but conflicts with the principal's state.
//   - A password is 8–1024 characters without NUL (keystore.ValidatePassword), hashed
//     with auth.HashPassword (argon2id) after every other check; it is never echoed or
//     logged, only has_password is shown.
//   - In a PATCH, null for display_name, scopes, metadata or disabled of a principal, and
//     for name, scopes, ttl or metadata of a key, means "unchanged"; null (or []) for
//     rate_limit removes the own rate limit; "password": null removes the password and
//     "expires_at": null the key's expiry. A ttl in a PATCH counts from now. With
//     keys.max_ttl set, "expires_at": null is 422: no expiry is above every maximum.
//   - Self-service: a request without an identity (never the case behind the proxy's
//     required auth) is 401; one authenticated with a key is 403 forbidden. Any
//     rate_limit, also null, is 400 naming the field. Lists accept ?limit=&cursor=.
//   - GET /v1/audit?principal= lists the events of a deleted or unknown principal too
//     (an unknown one has none); key_id is null for principal events.
package admin
