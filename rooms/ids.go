package rooms

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
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

// DefaultNodeName names the node when Config.NodeName is empty: a single
// node needs no name of its own, but its client ids have the same form as a
// cluster's.
const DefaultNodeName = "local"

// MaxNodeNameLength is the longest node name: a DNS label's, so that a host
// or pod name can serve, and short enough that a client id (node name,
// separator, random part) stays well under MaxIDBytes.
const MaxNodeNameLength = 63

// ClientIDSeparator joins a client id's node name to its random part. It
// cannot appear in a node name nor in the random part, so an id splits one
// way only; it is safe unescaped in URL paths, JSON and NATS subjects
// (where '.' would split a token and ':' ends a gRPC-gateway path).
const ClientIDSeparator = '_'

// clientIDRandomLength is the length of a client id's random part: 10 random
// bytes in base32.
const clientIDRandomLength = 16

// MaxClientIDLength is the longest client id a Hub makes.
const MaxClientIDLength = MaxNodeNameLength + 1 + clientIDRandomLength

// ValidateNodeName reports why name is not a usable node name, or nil.
// Node names are 1-63 characters of lowercase ASCII letters, digits and '-',
// starting and ending with a letter or digit (a DNS label), so that they
// can stand in client ids, URL paths and NATS subjects unescaped.
func ValidateNodeName(name string) error {
	switch {
	case name == "":
		return errorf(ErrInvalidArgument, "node name is empty")
	case len(name) > MaxNodeNameLength:
		return errorf(ErrInvalidArgument, "node name is %d characters; the limit is %d", len(name), MaxNodeNameLength)
	case name[0] == '-' || name[len(name)-1] == '-':
		return errorf(ErrInvalidArgument, "invalid node name %q: it must start and end with a letter or digit", name)
	}
	for i := 0; i < len(name); i++ {
		if !nodeNameByte(name[i]) {
			return errorf(ErrInvalidArgument, "invalid node name %q: character %d is not a lowercase letter, digit or '-'", name, i+1)
		}
	}
	return nil
}

func nodeNameByte(b byte) bool {
	return 'a' <= b && b <= 'z' || '0' <= b && b <= '9' || b == '-'
}

// newClientID returns node's name, ClientIDSeparator and a random
// 16-character part: unguessable, so that knowing one client's id tells
// nothing about another's, and unique across nodes; the node name lets a
// command for the client go straight to the node that holds it.
func newClientID(node string) string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return node + string(ClientIDSeparator) + clientIDEncoding.EncodeToString(b[:])
}

// NodeOfClientID returns the name of the node that holds the client id, or
// false if id is not of the form a Hub makes (a valid node name,
// ClientIDSeparator, 16 base32 characters). A router uses it to send a
// command for a client to that node alone.
func NodeOfClientID(id string) (node string, ok bool) {
	i := strings.IndexByte(id, ClientIDSeparator)
	if i < 0 {
		return "", false
	}
	node, random := id[:i], id[i+1:]
	if ValidateNodeName(node) != nil || len(random) != clientIDRandomLength {
		return "", false
	}
	for j := 0; j < len(random); j++ {
		if !clientIDByte(random[j]) {
			return "", false
		}
	}
	return node, true
}

// clientIDByte reports whether b is of clientIDEncoding's alphabet.
func clientIDByte(b byte) bool {
	switch b {
	case 'i', 'l', 'o', 'u':
		return false
	}
	return '0' <= b && b <= '9' || 'a' <= b && b <= 'z'
}

// newEpoch names a new history of a room: random, so that a room made again
// (or a server restarted) never repeats an epoch a client may hold.
func newEpoch() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return clientIDEncoding.EncodeToString(b[:])
}
