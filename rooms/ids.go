package rooms

import (
	"crypto/rand"
	"encoding/base32"
)

// MaxRoomIDLength is the longest room id accepted.
const MaxRoomIDLength = 128

// ValidateRoomID reports why id is not a usable room id, or nil. Room ids are
// 1-128 characters of ASCII letters, digits and _ - . : so that they are safe
// in URL paths, NATS subjects and logs without escaping; "." and ".." are
// refused, since a URL path cannot name them (clients and proxies resolve
// /v1/rooms/.. to /v1).
func ValidateRoomID(id string) error {
	switch id {
	case "":
		return errorf(ErrInvalidRoomID, "room id is empty")
	case ".", "..":
		return errorf(ErrInvalidRoomID, "room id %q is not allowed: a URL path cannot name it", id)
	}
	if len(id) > MaxRoomIDLength {
		return errorf(ErrInvalidRoomID, "room id is %d characters; the limit is %d", len(id), MaxRoomIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !roomIDByte(id[i]) {
			return errorf(ErrInvalidRoomID, "invalid room id %q: character %d is not a letter, digit or one of _ - . :", id, i+1)
		}
	}
	return nil
}

func roomIDByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	case b == '_', b == '-', b == '.', b == ':':
		return true
	}
	return false
}

var clientIDEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newClientID returns a random 16-character id: unguessable, so that knowing
// one client's id tells nothing about another's, and unique across nodes.
func newClientID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return clientIDEncoding.EncodeToString(b[:])
}

// newEpoch names a new history of a room: random, so that a room made again
// (or a server restarted) never repeats an epoch a client may hold.
func newEpoch() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return clientIDEncoding.EncodeToString(b[:])
}
