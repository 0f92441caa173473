// Package admin serves the admin listener of SPEC §5: /healthz, /readyz and /metrics
// without a token, and the /v1/ API for principals and keys behind a bearer token
// (constant-time compare against every configured token). It is the only place that maps
// keystore errors to HTTP status codes (see statusOf). It never imports proxy or a store
// backend.
//
// Choices where SPEC §5 is silent:
//   - keystore.ErrDisabled (a key created for a disabled principal) is 409 conflict: the
//     request is well-formed but conflicts with the principal's state.
//   - PATCH /v1/keys/{key_id} answers 501 not_implemented: keystore.Store has no UpdateKey.
//   - A principal's password cannot be set here yet (400 "password: not supported yet");
//     PATCH with "password": null removes one set by the CLI.
//   - In a PATCH, null for display_name, scopes, metadata or disabled means "unchanged";
//     null (or []) for rate_limit removes the principal's own rate limit.
package admin
