// Package keystore holds principals and API keys: the model, the key format,
// hashing, and the Store that persists them. It knows nothing of HTTP.
package keystore
