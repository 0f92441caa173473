//go:build !race

package storetest

// raceSlowdown stretches time bounds under the race detector, which slows every backend.
const raceSlowdown = 1
