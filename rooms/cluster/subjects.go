// Package cluster runs rooms across roomd nodes over NATS JetStream: one
// stream orders and keeps every room's messages, key-value buckets keep
// the rooms made through the admin API, the bans and the live nodes, and
// admin calls reach every node by request and reply. rooms stays
// transport-free; this package plugs into it as its Broker and through the
// Hub's exported methods.
package cluster

import "strings"

// roomToken is a room id as one NATS subject token (and KV key token):
// room ids may hold '.', the subject separator, and never '~', so '.'
// becomes '~' and the mapping is one to one.
func roomToken(roomID string) string { return strings.ReplaceAll(roomID, ".", "~") }

// roomOfToken undoes roomToken.
func roomOfToken(token string) string { return strings.ReplaceAll(token, "~", ".") }
