package auth

// Result is the outcome of a credential check: why a caller was or was not let in.
type Result uint8

// The results, as the label values of keygate_auth_total.
const (
	ResultOK Result = iota
	ResultMissing
	ResultMalformed
	ResultUnknown
	ResultRevoked
	ResultExpired
	ResultDisabled
	ResultBadPassword
	ResultStoreError
	// ResultBlocked: the caller used up its failed attempts (SPEC §4) and was refused
	// before any check; a 429.
	ResultBlocked
	resultCount
)

var resultNames = [resultCount]string{"ok", "missing", "malformed", "unknown", "revoked",
	"expired", "disabled", "bad_password", "store_error", "blocked"}

// String returns the metric label of r.
func (r Result) String() string {
	if r < resultCount {
		return resultNames[r]
	}
	return "unknown"
}
